#!/usr/bin/env python3
"""A Berth storage driver in Python: stores into a directory, served over Berth's out-of-process
driver protocol (proto/berth-driver.proto, docs/driver-protocol.md).

Berth starts it as `registry-storage-<name> '<json parameters>'` with BERTH_DRIVER_SOCKET naming
the Unix socket to serve on. It prints one JSON line on stdout, {"ready": true} once serving or
{"error": {...}} when it cannot start, and exits when its stdin closes (Berth went away).

Parameters: {"rootdirectory": "/some/dir"} (required). Layout below it:
  data/<path>                  committed files, as a directory tree
  writers/<hex path>.closed    what a closed writer kept, for writer(path, append=True)
  writers/<hex path>.<id>      a writer in progress, or a putContent about to be renamed in place

Needs python3-grpcio and python3-grpc-tools (Debian); the stubs are generated from the .proto into
a temporary directory at start.
"""

import json
import os
import re
import shutil
import sys
import tempfile
import threading
import uuid
from concurrent import futures

PROTOCOL_VERSION = "1.0"
DRIVER_NAME = "pydir"
CHUNK = 1024 * 1024
PATH_RE = re.compile(r"^(/[A-Za-z0-9._-]+)+$")
HERE = os.path.dirname(os.path.abspath(__file__))
PROTO = os.environ.get(
    "BERTH_DRIVER_PROTO", os.path.join(HERE, "..", "..", "proto", "berth-driver.proto")
)


def load_stubs():
    """Generates the Python stubs of the .proto into a temporary directory and imports them."""
    from grpc_tools import protoc

    out = tempfile.mkdtemp(prefix="berth-pydriver-")
    proto_dir = os.path.dirname(os.path.abspath(PROTO))
    result = protoc.main(
        [
            "grpc_tools.protoc",
            f"-I{proto_dir}",
            f"--python_out={out}",
            f"--grpc_python_out={out}",
            os.path.basename(PROTO),
        ]
    )
    if result != 0:
        raise RuntimeError(f"protoc failed on {PROTO}")
    sys.path.insert(0, out)
    import importlib

    messages = importlib.import_module("berth_driver_pb2")
    services = importlib.import_module("berth_driver_pb2_grpc")
    shutil.rmtree(out, ignore_errors=True)
    return messages, services


def handshake(line):
    sys.stdout.write(json.dumps(line) + "\n")
    sys.stdout.flush()


class DriverError(Exception):
    """A contract error: its gRPC status, its berth-error-code and the path it concerns."""

    def __init__(self, status, code, path, message):
        super().__init__(message)
        self.status, self.code, self.path = status, code, path


def main():
    import grpc

    try:
        parameters = json.loads(sys.argv[1] if len(sys.argv) > 1 else "{}")
        root = parameters.get("rootdirectory") if isinstance(parameters, dict) else None
        if not isinstance(root, str) or root == "":
            raise ValueError("is required (a directory to store into)")
        root = os.path.abspath(root)
        os.makedirs(os.path.join(root, "data"), exist_ok=True)
        os.makedirs(os.path.join(root, "writers"), exist_ok=True)
    except Exception as error:  # noqa: BLE001 - any failure to start is reported the same way
        handshake(
            {
                "error": {
                    "code": "ERR_DRIVER_INVALID_PARAMETER",
                    "parameter": "rootdirectory",
                    "message": f"parameter rootdirectory: {error}",
                }
            }
        )
        sys.exit(1)

    socket = os.environ.get("BERTH_DRIVER_SOCKET")
    if not socket:
        sys.stderr.write("BERTH_DRIVER_SOCKET is not set: Berth starts this driver\n")
        sys.exit(2)

    pb, pb_grpc = load_stubs()
    data = os.path.join(root, "data")
    writers = os.path.join(root, "writers")

    def full(path, root_allowed=False):
        if root_allowed and path == "/":
            return data
        if not PATH_RE.match(path) or any(part in (".", "..") for part in path.split("/")):
            raise DriverError(grpc.StatusCode.INVALID_ARGUMENT, "ERR_DRIVER_INVALID_PATH", path,
                              f"invalid path: {path}")
        return data + path

    def not_found(path):
        return DriverError(grpc.StatusCode.NOT_FOUND, "ERR_DRIVER_PATH_NOT_FOUND", path,
                           f"path not found: {path}")

    def sidecar(path, suffix):
        return os.path.join(writers, path.encode().hex() + "." + suffix)

    def prune(directory):
        """Removes directories left empty, up to the data root: an empty directory is gone."""
        while directory != data and directory.startswith(data):
            try:
                os.rmdir(directory)
            except OSError:
                return
            directory = os.path.dirname(directory)

    def info(path, name):
        st = os.stat(name)
        is_dir = os.path.isdir(name)
        return pb.FileInfo(path=path, size=0 if is_dir else st.st_size,
                           mod_time_ms=st.st_mtime_ns // 1_000_000, is_dir=is_dir)

    def fail(context, error):
        if isinstance(error, DriverError):
            status, code, path, message = error.status, error.code, error.path, str(error)
        elif isinstance(error, FileNotFoundError):
            status, code, path, message = grpc.StatusCode.NOT_FOUND, "ERR_DRIVER_PATH_NOT_FOUND", "", str(error)
        else:
            status, code, path, message = grpc.StatusCode.UNKNOWN, "ERR_DRIVER_BACKEND", "", repr(error)
        metadata = [("berth-error-code", code), ("berth-error-driver", DRIVER_NAME)]
        if path:
            metadata.append(("berth-error-path", path))
        context.set_trailing_metadata(metadata)
        context.abort(status, message)

    def handled(method):
        """Turns a method's exceptions into the statuses of the protocol."""

        def unary(self, request, context):
            try:
                return method(self, request, context)
            except Exception as error:  # noqa: BLE001
                fail(context, error)

        def streaming(self, request, context):
            try:
                yield from method(self, request, context)
            except Exception as error:  # noqa: BLE001
                fail(context, error)

        import inspect

        return streaming if inspect.isgeneratorfunction(method) else unary

    class Driver(pb_grpc.StorageDriverServicer):
        @handled
        def Version(self, request, context):
            return pb.VersionReply(version=PROTOCOL_VERSION, driver=DRIVER_NAME)

        @handled
        def GetContent(self, request, context):
            name = full(request.path)
            if not os.path.isfile(name):
                raise not_found(request.path)
            with open(name, "rb") as file:
                return pb.ContentReply(content=file.read())

        @handled
        def PutContent(self, request, context):
            name = full(request.path)
            temporary = sidecar(request.path, uuid.uuid4().hex)
            with open(temporary, "wb") as file:
                file.write(request.content)
            os.makedirs(os.path.dirname(name), exist_ok=True)
            os.replace(temporary, name)
            return pb.Empty()

        @handled
        def PutContentIfAbsent(self, request, context):
            name = full(request.path)
            temporary = sidecar(request.path, uuid.uuid4().hex)
            with open(temporary, "wb") as file:
                file.write(request.content)
            os.makedirs(os.path.dirname(name), exist_ok=True)
            try:
                os.link(temporary, name)  # fails if anything is there: one caller wins
                stored = True
            except FileExistsError:
                stored = False
            finally:
                os.remove(temporary)
            return pb.PutContentIfAbsentReply(stored=stored)

        @handled
        def Reader(self, request, context):
            name = full(request.path)
            if request.offset < 0:
                raise DriverError(grpc.StatusCode.OUT_OF_RANGE, "ERR_DRIVER_INVALID_OFFSET",
                                  request.path, f"invalid offset {request.offset}")
            if not os.path.isfile(name):
                raise not_found(request.path)
            with open(name, "rb") as file:
                file.seek(request.offset)
                yield pb.Chunk()  # open: the first message may be empty
                while context.is_active():
                    chunk = file.read(CHUNK)
                    if not chunk:
                        return
                    yield pb.Chunk(data=chunk)

        @handled
        def Writer(self, requests, context):
            path, file, current, aborted, ended = None, None, None, False, False
            try:
                for request in requests:
                    kind = request.WhichOneof("request")
                    if kind == "open":
                        path = request.open.path
                        full(path)
                        closed = sidecar(path, "closed")
                        current = sidecar(path, uuid.uuid4().hex)
                        if request.open.append:
                            try:
                                os.rename(closed, current)
                            except FileNotFoundError:
                                current = None
                                raise not_found(path)
                            file = open(current, "r+b")
                            file.seek(0, os.SEEK_END)
                        else:
                            try:
                                os.remove(closed)
                            except FileNotFoundError:
                                pass
                            file = open(current, "wb")
                        yield pb.WriterReply(opened=pb.WriterSize(size=file.tell()))
                    elif kind == "abort":
                        aborted = True
                    elif kind == "data":
                        if aborted:
                            raise DriverError(grpc.StatusCode.CANCELLED, "ERR_DRIVER_ABORTED", path,
                                              "write aborted")
                        file.write(request.data)
                    elif kind == "end":
                        action = request.end.action
                        size = file.tell()
                        file.close()
                        if action == pb.WriterEnd.CLOSE:
                            os.replace(current, sidecar(path, "closed"))
                        elif action == pb.WriterEnd.CANCEL:
                            os.remove(current)
                        elif action == pb.WriterEnd.COMMIT:
                            if aborted:
                                raise DriverError(grpc.StatusCode.CANCELLED, "ERR_DRIVER_ABORTED",
                                                  path, "commit aborted")
                            name = full(path)
                            os.makedirs(os.path.dirname(name), exist_ok=True)
                            os.replace(current, name)
                        ended = True
                        yield pb.WriterReply(ended=pb.WriterSize(size=size))
                        return
            finally:
                # Ended without `end` (the client went away): keep what was written, resumable.
                if not ended and current is not None and file is not None:
                    file.close()
                    os.replace(current, sidecar(path, "closed"))

        @handled
        def Stat(self, request, context):
            name = full(request.path, root_allowed=True)
            if not os.path.exists(name):
                raise not_found(request.path)
            return info(request.path, name)

        @handled
        def List(self, request, context):
            name = full(request.path, root_allowed=True)
            if os.path.isfile(name):
                return pb.ListReply()
            if not os.path.isdir(name):
                raise not_found(request.path)
            base = "" if request.path == "/" else request.path
            return pb.ListReply(paths=[f"{base}/{child}" for child in os.listdir(name)])

        @handled
        def Move(self, request, context):
            source, dest = full(request.source_path), full(request.dest_path)
            if not os.path.isfile(source):
                raise not_found(request.source_path)
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            os.replace(source, dest)
            prune(os.path.dirname(source))
            return pb.Empty()

        @handled
        def Delete(self, request, context):
            name = full(request.path)
            if os.path.isdir(name):
                shutil.rmtree(name)
            elif os.path.isfile(name):
                os.remove(name)
            else:
                raise not_found(request.path)
            prune(os.path.dirname(name))
            return pb.Empty()

        @handled
        def RedirectURL(self, request, context):
            return pb.RedirectReply(url="")

        @handled
        def Walk(self, request, context):
            name = full(request.path, root_allowed=True)
            if not os.path.exists(name):
                raise not_found(request.path)
            base = "" if request.path == "/" else request.path

            def descend(directory, prefix):
                try:
                    children = sorted(os.listdir(directory))
                except (NotADirectoryError, FileNotFoundError):
                    return
                for child in children:
                    child_name = os.path.join(directory, child)
                    try:
                        entry = info(f"{prefix}/{child}", child_name)
                    except FileNotFoundError:
                        continue  # removed while walking
                    if not context.is_active():
                        return
                    yield entry
                    if entry.is_dir:
                        yield from descend(child_name, f"{prefix}/{child}")

            yield from descend(name, base)

    options = [
        ("grpc.max_receive_message_length", -1),
        ("grpc.max_send_message_length", -1),
    ]
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=128), options=options)
    pb_grpc.add_StorageDriverServicer_to_server(Driver(), server)
    if os.path.exists(socket):
        os.remove(socket)
    server.add_insecure_port(f"unix:{socket}")
    server.start()
    handshake({"ready": True})

    def watch_stdin():
        # Berth closes our stdin when it stops (or dies): stop with it.
        while sys.stdin.buffer.read(65536):
            pass
        server.stop(grace=1)

    threading.Thread(target=watch_stdin, daemon=True).start()
    server.wait_for_termination()


if __name__ == "__main__":
    main()
