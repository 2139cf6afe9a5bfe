"""``softdisplaced check-config``: validate a configuration and print its hash."""

from __future__ import annotations

from ..config import config_hash, load_config
from ..samples import build_samples


def register(sub):
    p = sub.add_parser("check-config", help="validate a configuration file and print its hash")
    p.add_argument("configfile")
    p.set_defaults(func=run)


def run(args):
    cfg = load_config(args.configfile)
    samples = build_samples(cfg)
    print(f"{args.configfile}: valid, config hash {config_hash(cfg)}, {len(samples)} samples: {', '.join(samples)}")
    return 0
