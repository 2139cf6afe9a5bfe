"""``softdisplaced train`` and ``softdisplaced evaluate`` (neural-network discriminant).

train:    softdisplaced train --settings JSON --network NAME --outdir results/nn/NAME
              [--signal-skims P ...] [--background-skims P ...] [--eval-skims P ...]
              [--skims-dir results/skims] [--no-plots]
evaluate: softdisplaced evaluate --settings JSON --network NAME --model-dir results/nn/NAME
              --skim results/skims/A/S.h5 ... --output results/nn/NAME/scores/A/S.h5 ... [--sample S]
          (one call scores every skim of a network, pairwise --skim/--output; NumPy, no TensorFlow)

Settings keys used: ``seed``, ``nn``, ``samples.study_ntuples.dir`` (study_ntuples input),
``benchmarks`` (m_c, dm of the benchmarks, for parameterised networks), and for evaluate
optionally ``sample_params`` ({sample: {m_c, dm}}).  See docs/nn.md.
"""

from __future__ import annotations

from ..cli import add_settings_args
from ..config import settings_from_args


def register(sub):
    p = sub.add_parser("train", help="train one neural network")
    add_settings_args(p)
    p.add_argument("--network", required=True, help="name in nn.networks")
    p.add_argument("--outdir", required=True, help="output directory, results/nn/<network>")
    p.add_argument("--signal-skims", nargs="+", default=None, help="training signal skims (input: skims)")
    p.add_argument("--background-skims", nargs="+", default=None, help="training background skims (input: skims)")
    p.add_argument("--eval-skims", nargs="*", default=None,
                   help="further signal skims evaluated on all their events (input: skims)")
    p.add_argument("--skims-dir", default="results/skims",
                   help="where <analysis>/<sample>.h5 is looked up when no explicit paths are given")
    p.add_argument("--no-plots", action="store_true", help="skip the figures")
    p.set_defaults(func=run_train)

    e = sub.add_parser("evaluate", help="write NN scores of skims (any samples and analyses) for one network")
    add_settings_args(e)
    e.add_argument("--network", required=True)
    e.add_argument("--model-dir", required=True, help="results/nn/<network>")
    e.add_argument("--skim", required=True, nargs="+", help="results/skims/<analysis>/<sample>.h5, one or more")
    e.add_argument("--output", required=True, nargs="+",
                   help="results/nn/<network>/scores/<analysis>/<sample>.h5, one per --skim, same order")
    e.add_argument("--sample", default=None,
                   help="sample name of every --skim (default: each skim's 'sample' attribute)")
    e.set_defaults(func=run_evaluate)


def run_train(args):
    from ..nn.training import train

    settings = settings_from_args(args)
    m = train(settings, args.network, args.outdir, args.signal_skims, args.background_skims, args.eval_skims,
              args.skims_dir, make_plots=not args.no_plots)
    auc = ", ".join(f"{k}: {v:.4f}" for k, v in m["auc"].items() if v is not None)
    print(f"network {args.network}: AUC {auc}; HF eff at NN >= {m['cut']}: "
          f"{m['hf_eff_at_cut']:.4f} +- {m['hf_eff_at_cut_err']:.4f}")
    return 0


def run_evaluate(args):
    from ..nn.scoring import evaluate, load_network

    settings = settings_from_args(args)
    if len(args.skim) != len(args.output):
        raise ValueError(f"evaluate: {len(args.skim)} --skim files but {len(args.output)} --output files")
    loaded = load_network(args.network, args.model_dir)
    for skim, output in zip(args.skim, args.output):
        r = evaluate(settings, args.network, args.model_dir, skim, output, args.sample, loaded=loaded)
        print(f"{output}: {r['n']} scores ({r['n_nonfinite']} non-finite inputs)")
    return 0
