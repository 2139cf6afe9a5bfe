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
the reason.  The checks also hand coffea each file's chunking metadata (so that
coffea does not open the files once more to preprocess them) and, with the
iterative executor, the deserialised trees (reused by the work items).  Read
errors during processing are retried ``processing.retries``
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
from typing import Iterable, Mapping, NamedTuple

from coffea import processor
from coffea.nanoevents import DelphesSchema
from coffea.processor.executor import FileMeta

from .processor import FLAT_BRANCHES, JET_FIELDS, LEPTON_FIELDS, PARTICLE_FIELDS

__all__ = ["make_executor", "check_file", "required_branches", "preload_branches", "run", "BadFileError",
           "FileInfo"]

log = logging.getLogger(__name__)

TREE = "Delphes"


class BadFileError(ValueError):
    """An input file that cannot be processed; the message names the file and the problem."""


def _skip_exceptions():
    import uproot

    return (OSError, ValueError, KeyError, EOFError, uproot.exceptions.KeyInFileError, BadFileError)


# branches DelphesSchema needs beyond those the processor reads (it builds Jet and Particle 4-vectors and
# the MET record from them, and takes every collection's offsets from its counts branch)
_SCHEMA_BRANCHES = ["Jet/Jet.Mass", "MissingET_size", "MissingET/MissingET.Eta", "ScalarHT_size", "Event_size"]
_SCHEMA_PARTICLE_BRANCHES = ["Particle_size"] + [f"Particle/Particle.{f}" for f in ("PID", "Status", "PT", "Eta",
                                                                                     "Phi", "Mass")]


def required_branches(needs_isolation: bool, has_particle: bool) -> list[str]:
    """Branches read by the processor (without the optional mediator truth) or required by
    coffea's DelphesSchema."""
    out = preload_branches(needs_isolation, has_truth=False) + _SCHEMA_BRANCHES
    return out + (_SCHEMA_PARTICLE_BRANCHES if has_particle else [])


class FileInfo(NamedTuple):
    """What ``check_file`` learns about a valid input file."""

    entries: int  # number of entries of the tree
    truth: bool  # has the mediator truth branch Particle/Particle.CtauProper
    uuid: bytes  # the ROOT file's UUID (coffea's chunking metadata)


def check_file(path: str | os.PathLike, needs_isolation: bool = True, *,
               hold: contextlib.ExitStack | None = None, object_cache: dict | None = None) -> FileInfo:
    """Entries, truth and UUID of a valid input file; raises BadFileError/OSError naming the file otherwise.

    With ``hold`` the file stays open until ``hold`` closes, and its deserialised tree stays in
    ``object_cache``: a later ``uproot.open(..., object_cache=object_cache)`` of the file (coffea's
    work items in this process) gets that tree instead of reading and deserialising it again.
    """
    import uproot

    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"{p}: input file does not exist")
    options = {} if hold is None else {"object_cache": object_cache, "array_cache": None}
    try:
        fh = uproot.open(p, **options)
    except Exception as exc:
        raise BadFileError(f"{p}: cannot be opened as a ROOT file ({exc.__class__.__name__}: "
                           f"{str(exc).splitlines()[0] if str(exc) else ''}); truncated or not ROOT?") from exc
    with contextlib.ExitStack() as own:
        (own if hold is None else hold).enter_context(fh)
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
        return FileInfo(int(tree.num_entries), "Particle/Particle.CtauProper" in keys, fh.file.fUUID)


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
    """Exactly the branches the processor reads (its fields and the counts branches DelphesSchema takes
    the offsets from), preloaded in one bulk read per work item (faster than one by one).  The raw-read
    reference of the processing benchmark reads the same list."""
    lepton_fields = LEPTON_FIELDS + (("IsolationVar",) if needs_isolation else ())
    jagged = [("Electron", lepton_fields), ("Muon", lepton_fields), ("Jet", JET_FIELDS)]
    if has_truth:
        jagged.append(("Particle", PARTICLE_FIELDS))
    out = []
    for c, fields in jagged:
        out += [f"{c}_size"] + [f"{c}/{c}.{f}" for f in fields]
    return out + [f"{c}/{c}.{f}" for c, f, _ in FLAT_BRANCHES.values()]


def _metadata_cache(dataset: str, infos: Mapping[str, FileInfo]) -> dict:
    """coffea's per-file chunking metadata from the checks, so that coffea does not open every file
    once more to preprocess it (and never reuses stale metadata of a rewritten file)."""
    return {FileMeta(dataset, f, TREE): {"numentries": i.entries, "uuid": i.uuid} for f, i in infos.items()}


def _check_files(files, needs_isolation: bool, skip: bool, hold=None, object_cache=None):
    """``({file: FileInfo}`` of the valid files, ``[{"file", "reason"}]`` of the skipped ones); without
    ``skip`` a bad file raises.  ``hold``, ``object_cache``: see ``check_file``."""
    infos, skipped = {}, []
    for f in files:
        try:
            infos[f] = check_file(f, needs_isolation, hold=hold, object_cache=object_cache)
        except (OSError, BadFileError) as exc:
            if not skip:
                raise
            log.warning("skipping bad input file: %s", exc)
            skipped.append({"file": f, "reason": str(exc)})
    return infos, skipped


def _run_coffea(infos: Mapping[str, FileInfo], processor_instance, pcfg: Mapping, dataset: str,
                needs_isolation: bool, skip: bool, uproot_options: Mapping) -> list:
    """The processor's records of the files with entries (coffea's ``processor.Runner``)."""
    nonempty = [f for f, i in infos.items() if i.entries > 0]
    if not nonempty:
        return []
    truth = any(i.truth for i in infos.values())
    with make_executor(pcfg) as executor:
        runner = processor.Runner(
            executor=executor, schema=DelphesSchema, chunksize=int(pcfg.get("chunksize", 100000)),
            metadata_cache=_metadata_cache(dataset, infos),
            skipbadfiles=_skip_exceptions() if skip else False, savemetrics=False)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*[Mm]issing cross-reference.*")
            warnings.filterwarnings("ignore", message=".*Performed attempt.*")
            try:
                fileset = {dataset: {"files": nonempty, "preload": preload_branches(needs_isolation, truth)}}
                out = runner(fileset, processor_instance, treename=TREE, uproot_options=dict(uproot_options))
            except Exception as exc:
                named = _name_file(exc, nonempty)
                if named is exc:
                    raise
                raise named from exc
    return list((out or {}).get("records", []))


def _partly_processed(records, infos: Mapping[str, FileInfo], skip: bool) -> list:
    """``[{"file", "reason"}]`` of the files of which coffea skipped failing work items."""
    done = {}
    for r in records:
        done[r["file"]] = done.get(r["file"], 0) + r["n_events"]
    skipped = []
    for f, info in infos.items():
        if info.entries > 0 and done.get(f, 0) != info.entries:
            reason = (f"{f}: read error during processing: {done.get(f, 0)} of {info.entries} entries processed "
                      "(the failing work items were skipped; see the log)")
            if not skip:  # pragma: no cover - coffea raises before we get here
                raise BadFileError(reason)
            log.warning("%s", reason)
            skipped.append({"file": f, "reason": reason})
    return skipped


def run(files: Iterable[str | os.PathLike], processor_instance, pcfg: Mapping, dataset: str = "sample",
        needs_isolation: bool = True):
    """Run ``processor_instance`` over ``files``.

    Returns ``(records, skipped, entries)``: the processor's records, a list of
    ``{"file", "reason"}`` for skipped files, and ``{file: number of entries}``.

    With the iterative executor the work items run in this process and reuse the trees that the
    file checks deserialised (``check_file``'s ``hold``); other executors' workers open them anew.
    """
    skip = bool(pcfg.get("skip_bad_files", False))
    files = [str(Path(f).resolve()) for f in files]
    in_process = pcfg.get("executor", "iterative") == "iterative"
    with contextlib.ExitStack() as hold:
        object_cache = {} if in_process else None
        infos, skipped = _check_files(files, needs_isolation, skip, hold if in_process else None, object_cache)
        options = {"object_cache": object_cache} if in_process else {}
        records = _run_coffea(infos, processor_instance, pcfg, dataset, needs_isolation, skip, options)
    skipped += _partly_processed(records, infos, skip)
    return records, skipped, {f: i.entries for f, i in infos.items()}


def _name_file(exc: Exception, files) -> Exception:
    """Make sure the error message names the file(s) being processed."""
    msg = str(exc)
    if any(f in msg or Path(f).name in msg for f in files):
        return exc if isinstance(exc, (OSError, ValueError)) else BadFileError(msg)
    return BadFileError(f"{', '.join(files)}: processing failed ({exc.__class__.__name__}: {msg.splitlines()[0] if msg else ''})")
