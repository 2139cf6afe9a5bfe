"""Running the processor with coffea's ``processor.Runner`` on the configured executor.

``processing.executor``:

* ``iterative``: ``IterativeExecutor`` (one process; what each workflow job uses by default,
  since Snakemake already runs one job per chunk in parallel);
* ``futures``: ``FuturesExecutor`` with ``processing.workers`` processes;
* ``dask``: ``DaskExecutor`` on a ``distributed.LocalCluster`` with ``processing.workers``
  single-threaded worker processes, or on the scheduler at ``processing.dask_scheduler``
  (e.g. one started by dask-jobqueue on a batch system).

Bad input files (``processing.skip_bad_files``): only a failure to read the file's bytes
(I/O, decompression, deserialisation: :func:`is_read_failure`) makes a file *bad*; any other
exception (a bug in the processor, a non-finite input in ``error`` mode) always propagates.
Every file is first checked in the main process (exists, opens as ROOT, has the ``Delphes``
tree and every branch the analyses and the DelphesSchema need).  A failing file raises an
error naming the file and the problem, or, when skipping is allowed, is left out and
recorded.  The checks also hand coffea each file's chunking metadata (so that coffea does not
open the files once more to preprocess them) and, with the iterative executor, the
deserialised trees (reused by the work items).  Read failures during processing (a file
truncated after its header, a corrupted compressed basket) are retried
``processing.retries`` times by coffea; then, when skipping is allowed, coffea drops the work
item and the file is recorded as (partly) skipped with the entries lost (the numbers of
entries expected and processed are compared per file); otherwise the error propagates,
naming the file.

Each skipped file is recorded as ``{"file", "reason", "entries_lost", "entries_processed"}``
(``entries_lost`` is None when the file could not be opened, so its size is unknown).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import warnings
from pathlib import Path
from typing import Iterable, Mapping, NamedTuple

from coffea import processor
from coffea.nanoevents import DelphesSchema
from coffea.processor.executor import FileMeta

from softdisplaced.processing.processor import (FLAT_BRANCHES, HT_UNIQUE_BRANCH, JET_FIELDS, LEPTON_FIELDS,
                                               LEPTON_TRUTH_FIELD, PARTICLE_FIELDS, VERTEX_FIELDS)

__all__ = ["make_executor", "check_file", "required_branches", "preload_branches", "run", "BadFileError",
           "FileInfo", "ReadFailure", "is_read_failure"]

log = logging.getLogger(__name__)

TREE = "Delphes"


class BadFileError(ValueError):
    """An input file that cannot be processed; the message names the file and the problem."""


def _read_failure_types() -> tuple[type[BaseException], ...]:
    import lzma
    import zlib

    import uproot

    return (OSError, EOFError, zlib.error, lzma.LZMAError, uproot.deserialization.DeserializationError)


# modules whose ValueErrors mean undecodable bytes (a corrupted compression header, a checksum or
# decompressed-size mismatch), not a misuse by our code
_READ_MODULES = (f"uproot{os.sep}compression.py", f"uproot{os.sep}deserialization.py")


def is_read_failure(exc: BaseException) -> bool:
    """Is ``exc`` a failure to read a file's bytes (I/O, decompression, deserialisation)?

    True for OSError (missing, unreadable or truncated file), EOFError, zlib/lzma errors and
    uproot's DeserializationError, and for a ValueError raised inside uproot's decompression or
    deserialisation code.  False for everything else, e.g. a ValueError or KeyError of our own code.
    """
    if isinstance(exc, _read_failure_types()):
        return True
    if isinstance(exc, ValueError) and exc.__traceback__ is not None:
        tb = exc.__traceback__
        while tb.tb_next is not None:
            tb = tb.tb_next
        return tb.tb_frame.f_code.co_filename.endswith(_READ_MODULES)
    return False


class _ReadFailureMeta(type):
    def __instancecheck__(cls, exc) -> bool:
        return is_read_failure(exc)


class ReadFailure(Exception, metaclass=_ReadFailureMeta):
    """``isinstance(exc, ReadFailure)`` is :func:`is_read_failure`: the one exception "type" given to
    coffea's ``skipbadfiles``, so that coffea skips exactly the work items whose file cannot be read."""


def _root_read_failure(exc: BaseException) -> BaseException | None:
    """The first read failure in the cause/context chain of ``exc`` (coffea wraps them)."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if is_read_failure(exc):
            return exc
        exc = exc.__cause__ or exc.__context__
    return None


# branches DelphesSchema needs beyond those the processor reads (it builds Jet and Particle 4-vectors and
# the MET record from them, and takes every collection's offsets from its counts branch)
_SCHEMA_BRANCHES = ["Jet/Jet.Mass", "MissingET_size", "MissingET/MissingET.Eta", "ScalarHT_size", "Event_size"]
_SCHEMA_PARTICLE_BRANCHES = ["Particle_size"] + [f"Particle/Particle.{f}" for f in ("PID", "Status", "PT", "Eta",
                                                                                     "Phi", "Mass")]


def required_branches(needs_isolation: bool, has_particle: bool, jet_neutrals: bool = False) -> list[str]:
    """Branches read by the processor (without the optional mediator truth) or required by
    coffea's DelphesSchema."""
    out = preload_branches(needs_isolation, has_truth=False, jet_neutrals=jet_neutrals) + _SCHEMA_BRANCHES
    return out + (_SCHEMA_PARTICLE_BRANCHES if has_particle else [])


class FileInfo(NamedTuple):
    """What ``check_file`` learns about a valid input file."""

    entries: int  # number of entries of the tree
    truth: bool  # has the mediator truth branch Particle/Particle.CtauProper
    uuid: bytes  # the ROOT file's UUID (coffea's chunking metadata)
    ht_unique: bool = False  # has ScalarHT/ScalarHT.HTUnique (this project's study-card HT)


def check_file(path: str | os.PathLike, needs_isolation: bool = True, *,
               hold: contextlib.ExitStack | None = None, object_cache: dict | None = None,
               jet_neutrals: bool = False) -> FileInfo:
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
        missing = [b for b in required_branches(needs_isolation, has_particle, jet_neutrals) if b not in keys]
        if missing:
            raise BadFileError(f"{p}: tree '{TREE}' lacks the branch(es) {', '.join(missing)}")
        return FileInfo(int(tree.num_entries), "Particle/Particle.CtauProper" in keys, fh.file.fUUID,
                        HT_UNIQUE_BRANCH in keys)


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


def preload_branches(needs_isolation: bool, has_truth: bool, jet_neutrals: bool = False,
                     lepton_vertex: bool = False, ht_unique: bool = False) -> list[str]:
    """Exactly the branches the processor reads (its fields and the counts branches DelphesSchema takes
    the offsets from), preloaded in one bulk read per work item (faster than one by one).  The raw-read
    reference of the processing benchmark reads the same list.  ``jet_neutrals``: Jet.NNeutrals, for the
    study's jets (``SoftDisplacedProcessor.needs_jet_neutrals``); ``lepton_vertex``: the leptons' generator
    particles and their vertices (``SoftDisplacedProcessor.needs_lepton_vertex``), with ``has_truth``;
    ``ht_unique``: ScalarHT.HTUnique (``SoftDisplacedProcessor.needs_ht_unique``, files that have it)."""
    vertex = has_truth and lepton_vertex
    lepton_fields = LEPTON_FIELDS + (("IsolationVar",) if needs_isolation else ()) + \
        ((LEPTON_TRUTH_FIELD,) if vertex else ())
    jagged = [("Electron", lepton_fields), ("Muon", lepton_fields),
              ("Jet", JET_FIELDS + (("NNeutrals",) if jet_neutrals else ()))]
    if has_truth:
        jagged.append(("Particle", PARTICLE_FIELDS + (VERTEX_FIELDS if vertex else ())))
    out = []
    for c, fields in jagged:
        out += [f"{c}_size"] + [f"{c}/{c}.{f}" for f in fields]
    out += [f"{c}/{c}.{f}" for c, f, _ in FLAT_BRANCHES.values()]
    return out + ([HT_UNIQUE_BRANCH] if ht_unique else [])


def _metadata_cache(dataset: str, infos: Mapping[str, FileInfo]) -> dict:
    """coffea's per-file chunking metadata from the checks, so that coffea does not open every file
    once more to preprocess it (and never reuses stale metadata of a rewritten file)."""
    return {FileMeta(dataset, f, TREE): {"numentries": i.entries, "uuid": i.uuid} for f, i in infos.items()}


def _check_files(files, needs_isolation: bool, skip: bool, hold=None, object_cache=None, jet_neutrals=False):
    """``({file: FileInfo}`` of the valid files, ``[{"file", "reason"}]`` of the skipped ones); without
    ``skip`` a bad file raises.  ``hold``, ``object_cache``: see ``check_file``."""
    infos, skipped = {}, []
    for f in files:
        try:
            infos[f] = check_file(f, needs_isolation, hold=hold, object_cache=object_cache, jet_neutrals=jet_neutrals)
        except (OSError, BadFileError) as exc:
            if not skip:
                raise
            log.warning("skipping bad input file: %s", exc)
            skipped.append({"file": f, "reason": str(exc), "entries_lost": None, "entries_processed": 0})
    return infos, skipped


def _run_coffea(infos: Mapping[str, FileInfo], processor_instance, pcfg: Mapping, dataset: str,
                needs_isolation: bool, skip: bool, uproot_options: Mapping,
                jet_neutrals: bool = False) -> tuple[list, list[str]]:
    """The processor's records of the files with entries (coffea's ``processor.Runner``) and the
    messages of the work items coffea skipped (read failures, with skipping allowed)."""
    nonempty = [f for f, i in infos.items() if i.entries > 0]
    if not nonempty:
        return [], []
    truth = any(i.truth for i in infos.values())
    with make_executor(pcfg) as executor:
        runner = processor.Runner(
            executor=executor, schema=DelphesSchema, chunksize=int(pcfg.get("chunksize", 100000)),
            metadata_cache=_metadata_cache(dataset, infos),
            skipbadfiles=(ReadFailure,) if skip else False, savemetrics=False)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                # HTUnique where the processor reads it and every file has it (else read where present)
                ht_unique = processor_instance.needs_ht_unique() and all(infos[f].ht_unique for f in nonempty)
                fileset = {dataset: {"files": nonempty, "preload": preload_branches(
                    needs_isolation, truth, jet_neutrals, processor_instance.needs_lepton_vertex(), ht_unique)}}
                out = runner(fileset, processor_instance, treename=TREE, uproot_options=dict(uproot_options))
            except Exception as exc:
                if skip and isinstance(exc, ValueError) and str(exc).startswith("No chunks returned results"):
                    out = None  # every work item failed to read and was skipped: coffea has no output
                else:
                    named = _name_file(exc, nonempty)
                    if named is exc:
                        raise
                    raise named from (exc if isinstance(named, BadFileError) else None)
    messages = [str(w.message) for w in caught if str(w.message).startswith("Skipping bad file")]
    for w in caught:
        if not str(w.message).startswith(("Skipping bad file", "Performed attempt")) and \
                "issing cross-reference" not in str(w.message):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return list((out or {}).get("records", [])), messages


def _partly_processed(records, infos: Mapping[str, FileInfo], skip: bool, messages=()) -> list:
    """Skip records of the files of which coffea skipped failing work items (read failures)."""
    done = {}
    for r in records:
        done[r["file"]] = done.get(r["file"], 0) + r["n_events"]
    skipped = []
    for f, info in infos.items():
        n = done.get(f, 0)
        if info.entries > 0 and n != info.entries:
            reason = (f"{f}: read error during processing: {n} of {info.entries} entries processed "
                      "(the failing work items were skipped)")
            causes = dict.fromkeys(_short_cause(m) for m in messages if f in m)
            if causes:
                reason += ": " + " | ".join(causes)
            if not skip:  # pragma: no cover - coffea raises before we get here
                raise BadFileError(reason)
            log.warning("%s", reason)
            skipped.append({"file": f, "reason": reason, "entries_lost": int(info.entries - n),
                            "entries_processed": int(n)})
    return skipped


def run(files: Iterable[str | os.PathLike], processor_instance, pcfg: Mapping, dataset: str = "sample",
        needs_isolation: bool = True, jet_neutrals: bool = False):
    """Run ``processor_instance`` over ``files``.

    Returns ``(records, skipped, entries)``: the processor's records, the skip records of the
    skipped files (see the module docstring), and ``{file: number of entries}``.

    With the iterative executor the work items run in this process and reuse the trees that the
    file checks deserialised (``check_file``'s ``hold``); other executors' workers open them anew.
    """
    skip = bool(pcfg.get("skip_bad_files", False))
    files = [str(Path(f).resolve()) for f in files]
    in_process = pcfg.get("executor", "iterative") == "iterative"
    with contextlib.ExitStack() as hold:
        object_cache = {} if in_process else None
        infos, skipped = _check_files(files, needs_isolation, skip, hold if in_process else None, object_cache,
                                      jet_neutrals)
        options = {"object_cache": object_cache} if in_process else {}
        records, messages = _run_coffea(infos, processor_instance, pcfg, dataset, needs_isolation, skip, options,
                                        jet_neutrals)
    skipped += _partly_processed(records, infos, skip, messages)
    return records, skipped, {f: i.entries for f, i in infos.items()}


def _describe(exc: BaseException) -> str:
    """``module.Type: message`` on one line."""
    cls = exc.__class__
    name = cls.__name__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__name__}"
    return f"{name}: {' '.join(str(exc).split())}"


def _short_cause(message: str) -> str:
    """The underlying error of one of coffea's "Skipping bad file" warnings."""
    m = re.search(r"The error was: (.*?)\.?$", message, re.S)
    text = m.group(1) if m else message.split("The last exception was: ")[-1]
    return " ".join(text.replace("\\n", " ").split())


def _name_file(exc: Exception, files) -> Exception:
    """The error to raise for ``exc``, naming the file(s) being processed.  A read failure becomes a
    BadFileError with its root cause; any other exception (our code's) propagates as it is (without
    coffea's generic wrapper), with a note naming the files unless its message does."""
    msg = str(exc)
    cause = _root_read_failure(exc)
    if cause is not None:
        name = next((f for f in files if f in msg or f in str(cause)), None)
        where = name or ", ".join(files)
        return BadFileError(f"{where}: cannot be read ({_describe(cause)}); truncated or corrupted? "
                            "(processing.skip_bad_files: true skips and records it)")
    while type(exc) is Exception and exc.__cause__ is not None:  # coffea's "Failed processing file" wrapper
        exc = exc.__cause__
    if not any(f in str(exc) or Path(f).name in str(exc) for f in files):
        exc.add_note(f"while processing {', '.join(files)}")
    return exc
