"""Running the processor with coffea's ``processor.Runner`` on the configured executor.

``processing.executor``:

* ``iterative``: ``IterativeExecutor`` (one process; what each workflow job uses by default,
  since Snakemake already runs one job per chunk in parallel);
* ``futures``: ``FuturesExecutor`` with ``processing.workers`` processes;
* ``dask``: ``DaskExecutor`` on a ``distributed.LocalCluster`` with ``processing.workers``
  single-threaded worker processes, or on the scheduler at ``processing.dask_scheduler``
  (e.g. one started by dask-jobqueue on a batch system).

Bad input files (``processing.skip_bad_files``): every file is first checked in the
main process (exists, opens as ROOT, has the ``Delphes`` tree and every branch the
analyses and the DelphesSchema need).  A failing file raises an error naming the
file and the problem, or, when skipping is allowed, is left out and recorded with
the reason.  Read errors during processing are retried ``processing.retries``
times by coffea; then, when skipping is allowed, coffea drops the work item and the
file is recorded as partly skipped (the numbers of entries expected and processed
are compared per file); otherwise the error propagates.
"""

from __future__ import annotations

import contextlib
import logging
import os
import warnings
from pathlib import Path
from typing import Iterable, Mapping

from coffea import processor
from coffea.nanoevents import DelphesSchema

__all__ = ["make_executor", "check_file", "required_branches", "run", "BadFileError"]

log = logging.getLogger(__name__)

TREE = "Delphes"


class BadFileError(ValueError):
    """An input file that cannot be processed; the message names the file and the problem."""


def _skip_exceptions():
    import uproot

    return (OSError, ValueError, KeyError, EOFError, uproot.exceptions.KeyInFileError, BadFileError)


def required_branches(needs_isolation: bool, has_particle: bool) -> list[str]:
    """Branches read by the processor or required by coffea's DelphesSchema."""
    out = []
    for c in ("Electron", "Muon"):
        out.append(f"{c}_size")
        fields = ["PT", "Eta", "Phi", "Charge", "D0"] + (["IsolationVar"] if needs_isolation else [])
        out += [f"{c}/{c}.{f}" for f in fields]
    out += ["Jet_size"] + [f"Jet/Jet.{f}" for f in ("PT", "Eta", "Phi", "Mass")]
    out += ["MissingET_size"] + [f"MissingET/MissingET.{f}" for f in ("MET", "Eta", "Phi")]
    out += ["ScalarHT_size", "ScalarHT/ScalarHT.HT", "Event_size", "Event/Event.Number", "Event/Event.Weight"]
    if has_particle:
        out += [f"Particle/Particle.{f}" for f in ("PID", "Status", "PT", "Eta", "Phi", "Mass")]
    return out


def check_file(path: str | os.PathLike, needs_isolation: bool = True) -> tuple[int, bool]:
    """(number of entries, has mediator truth) of a valid input file; raises BadFileError/OSError
    naming the file otherwise."""
    import uproot

    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"{p}: input file does not exist")
    try:
        fh = uproot.open(p)
    except Exception as exc:
        raise BadFileError(f"{p}: cannot be opened as a ROOT file ({exc.__class__.__name__}: "
                           f"{str(exc).splitlines()[0] if str(exc) else ''}); truncated or not ROOT?") from exc
    with fh:
        try:
            tree = fh[TREE]
        except Exception as exc:
            keys = ", ".join(sorted({k.split(";")[0] for k in fh.keys(recursive=False)})) or "none"
            raise BadFileError(f"{p}: no TTree '{TREE}' in the file (keys: {keys})") from exc
        if not isinstance(tree, uproot.behaviors.TBranch.HasBranches):
            raise BadFileError(f"{p}: '{TREE}' is not a TTree")
        keys = set(tree.keys())
        has_particle = "Particle_size" in keys
        missing = [b for b in required_branches(needs_isolation, has_particle) if b not in keys]
        if missing:
            raise BadFileError(f"{p}: tree '{TREE}' lacks the branch(es) {', '.join(missing)}")
        return int(tree.num_entries), "Particle/Particle.CtauProper" in keys


@contextlib.contextmanager
def make_executor(pcfg: Mapping):
    """Context manager yielding the coffea executor of ``processing`` (and closing a LocalCluster)."""
    kind = pcfg.get("executor", "iterative")
    retries = int(pcfg.get("retries", 0))
    workers = int(pcfg.get("workers", 1))
    if kind == "iterative":
        yield processor.IterativeExecutor(status=False, retries=retries)
    elif kind == "futures":
        yield processor.FuturesExecutor(workers=workers, status=False, retries=retries)
    elif kind == "dask":
        from distributed import Client, LocalCluster

        address = pcfg.get("dask_scheduler")
        if address:
            client = Client(address)
            try:
                yield processor.DaskExecutor(client=client, status=False, retries=retries)
            finally:
                client.close()
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                       dashboard_address=None, silence_logs=logging.WARNING)
            client = Client(cluster)
            try:
                yield processor.DaskExecutor(client=client, status=False, retries=retries)
            finally:
                client.close()
                cluster.close()
    else:
        raise ValueError(f"processing.executor: unknown executor '{kind}' (iterative, futures, dask)")


def preload_branches(needs_isolation: bool, has_truth: bool) -> list[str]:
    """The branches the processor reads, preloaded in one bulk read per work item (faster than one by one)."""
    out = ["Electron_size", "Muon_size", "Jet_size", "MissingET_size", "ScalarHT_size", "Event_size"]
    for c in ("Electron", "Muon"):
        out += [f"{c}/{c}.{f}" for f in ("PT", "Eta", "Phi", "Charge", "D0")]
        if needs_isolation:
            out.append(f"{c}/{c}.IsolationVar")
    out += [f"Jet/Jet.{f}" for f in ("PT", "Eta", "Phi")]
    out += ["MissingET/MissingET.MET", "MissingET/MissingET.Phi", "ScalarHT/ScalarHT.HT",
            "Event/Event.Number", "Event/Event.Weight"]
    if has_truth:
        out += ["Particle_size"] + [f"Particle/Particle.{f}" for f in ("PID", "Status", "CtauProper")]
    return out


def run(files: Iterable[str | os.PathLike], processor_instance, pcfg: Mapping, dataset: str = "sample",
        needs_isolation: bool = True):
    """Run ``processor_instance`` over ``files``.

    Returns ``(records, skipped, entries)``: the processor's records, a list of
    ``{"file", "reason"}`` for skipped files, and ``{file: number of entries}``.
    """
    skip = bool(pcfg.get("skip_bad_files", False))
    files = [str(Path(f).resolve()) for f in files]
    good, skipped, entries, truth = [], [], {}, False
    for f in files:
        try:
            entries[f], t = check_file(f, needs_isolation)
            truth |= t
            good.append(f)
        except (OSError, BadFileError) as exc:
            if not skip:
                raise
            log.warning("skipping bad input file: %s", exc)
            skipped.append({"file": f, "reason": str(exc)})
    records = []
    nonempty = [f for f in good if entries[f] > 0]
    if nonempty:
        with make_executor(pcfg) as executor:
            runner = processor.Runner(
                executor=executor, schema=DelphesSchema, chunksize=int(pcfg.get("chunksize", 100000)),
                skipbadfiles=_skip_exceptions() if skip else False, savemetrics=False)
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=".*[Mm]issing cross-reference.*")
                warnings.filterwarnings("ignore", message=".*Performed attempt.*")
                try:
                    fileset = {dataset: {"files": nonempty, "preload": preload_branches(needs_isolation, truth)}}
                    out = runner(fileset, processor_instance, treename=TREE)
                except Exception as exc:
                    named = _name_file(exc, nonempty)
                    if named is exc:
                        raise
                    raise named from exc
        records = list((out or {}).get("records", []))
    done = {}
    for r in records:
        done[r["file"]] = done.get(r["file"], 0) + r["n_events"]
    for f in nonempty:
        if done.get(f, 0) != entries[f]:
            reason = (f"{f}: read error during processing: {done.get(f, 0)} of {entries[f]} entries processed "
                      "(the failing work items were skipped; see the log)")
            if not skip:  # pragma: no cover - coffea raises before we get here
                raise BadFileError(reason)
            log.warning("%s", reason)
            skipped.append({"file": f, "reason": reason})
    return records, skipped, entries


def _name_file(exc: Exception, files) -> Exception:
    """Make sure the error message names the file(s) being processed."""
    msg = str(exc)
    if any(f in msg or Path(f).name in msg for f in files):
        return exc if isinstance(exc, (OSError, ValueError)) else BadFileError(msg)
    return BadFileError(f"{', '.join(files)}: processing failed ({exc.__class__.__name__}: {msg.splitlines()[0] if msg else ''})")
