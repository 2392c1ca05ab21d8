"""The generated protocol stubs (``cerebelum_pb``), found or generated.

If ``cerebelum_pb`` is importable (CTest puts the build tree's copy on
PYTHONPATH), it is used. Otherwise the stubs are generated once from
``proto/`` into ``$CEREBELUM_STUBS_DIR`` or ``~/.cache/cerebelum/stubs-<hash>``
(the hash covers the .proto files, so a changed protocol regenerates).
"""

from __future__ import annotations

import hashlib
import importlib
import os
import sys
from pathlib import Path


def _cache_dir(proto_dir: Path, protogen) -> Path:
    env = os.environ.get("CEREBELUM_STUBS_DIR")
    if env:
        return Path(env)
    h = hashlib.sha256()
    for name in protogen.PROTOS:
        p = proto_dir / name
        h.update(p.read_bytes() if p.is_file() else b"")
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return base / "cerebelum" / f"stubs-{h.hexdigest()[:16]}"


def _load():
    from . import protogen

    try:
        return importlib.import_module(protogen.PACKAGE)
    except ImportError:
        pass
    proto_dir = protogen.default_proto_dir()
    out = _cache_dir(proto_dir, protogen)
    if not (out / protogen.PACKAGE / "worker_pb2_grpc.py").is_file():
        protogen.generate(out, proto_dir)
    sys.path.insert(0, str(out))
    return importlib.import_module(protogen.PACKAGE)


_MODULES = ("events_pb2", "worker_pb2", "worker_pb2_grpc", "admin_pb2",
            "admin_pb2_grpc")


def __getattr__(name: str):
    # Loaded on first use, so importing the SDK (or running
    # ``python3 -m cerebelum.protogen``) never generates anything by itself.
    if name not in _MODULES:
        raise AttributeError(name)
    pkg = _load()
    for m in _MODULES:
        globals()[m] = importlib.import_module(pkg.__name__ + "." + m)
    return globals()[name]
