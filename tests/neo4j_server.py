"""Start a real Neo4j 5.26 LTS Community server for the test suite.

Standard library only, so a pytest ``conftest.py`` can import it before
anything else is installed.

How it works
------------
Neo4j's Community tarball is not published on Maven Central, but the server
itself is: the artifact ``org.neo4j:neo4j`` contains the server entry point
``org.neo4j.server.CommunityEntryPoint`` (the very class ``bin/neo4j console``
launches) and pulls in the Bolt connector, Cypher, the HTTP stack and the
``neo4j-admin`` commands.  So:

1. ``mvn dependency:copy-dependencies`` on ``tests/neo4j/pom.xml`` fetches the
   jars once into ``<repo>/.cache/neo4j/<version>/lib`` (Maven's own local
   repository for this lives in ``.cache/neo4j/m2`` and is removed afterwards;
   the cache folder gets its own ``.gitignore``).  Later runs reuse the jars.
2. Every server gets a fresh home (conf/, data/, logs/, ...) in a temporary
   directory, so each test session starts with an empty database.
3. ``org.neo4j.cli.AdminTool dbms set-initial-password`` (what
   ``neo4j-admin dbms set-initial-password`` runs) sets the password.
4. ``java ... org.neo4j.server.CommunityEntryPoint --home-dir ... --config-dir
   ...`` runs the server in the foreground as a subprocess, Bolt on
   127.0.0.1:<free port>, HTTP off by default.
5. Ready means: the server logged ``Started.``, the Bolt port answers the Bolt
   handshake and, when the ``neo4j`` Python driver is importable, a real
   ``RETURN 1`` query authenticated with the password succeeds.

Usage::

    from neo4j_server import Neo4jServer, Neo4jUnavailable

    server = Neo4jServer().start()       # or: with Neo4jServer() as server:
    driver = GraphDatabase.driver(server.uri, auth=server.auth)
    ...
    server.stop()

Command line::

    python tests/neo4j_server.py start      # foreground; prints URI, Ctrl-C stops
    python tests/neo4j_server.py download   # only fetch the jars into the cache
    python tests/neo4j_server.py selftest   # cold/warm timing + a real query

Environment overrides: ``CAPMAP_NEO4J_VERSION``, ``CAPMAP_NEO4J_CACHE``
(cache folder, default ``<repo>/.cache/neo4j``), ``CAPMAP_NEO4J_JAVA`` (a java
executable; else ``$JAVA_HOME``, ``PATH`` and ``/usr/lib/jvm`` are searched
for Java 17 or 21), ``CAPMAP_NEO4J_MVN`` (the mvn executable),
``CAPMAP_NEO4J_DOWNLOAD_TIMEOUT`` and ``CAPMAP_NEO4J_START_TIMEOUT`` (seconds),
``CAPMAP_NEO4J_HEAP`` (max JVM heap, default 512m; the initial heap is 128m).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING

if TYPE_CHECKING:
    from typing import Self

__all__ = [
    "NEO4J_VERSION",
    "Neo4jServer",
    "Neo4jUnavailable",
    "cache_dir",
    "ensure_artifacts",
    "find_java",
    "find_maven",
]

NEO4J_VERSION = os.environ.get("CAPMAP_NEO4J_VERSION", "5.26.30")
SUPPORTED_JAVA = (17, 21)  # the Java versions Neo4j 5.26 supports

_HERE = Path(__file__).resolve().parent
REPO_ROOT = _HERE.parent
POM = _HERE / "neo4j" / "pom.xml"
ENTRY_POINT = "org.neo4j.server.CommunityEntryPoint"
ADMIN_TOOL = "org.neo4j.cli.AdminTool"

# JVM flags: the ones Neo4j's default neo4j.conf (server.jvm.additional) sets,
# minus -XX:+AlwaysPreTouch, which would commit the whole heap up front.
_JVM_FLAGS = [
    "-XX:+UseG1GC",
    "-XX:-OmitStackTraceInFastThrow",
    "-XX:+UnlockExperimentalVMOptions",
    "-XX:+TrustFinalNonStaticFields",
    "-XX:+DisableExplicitGC",
    "-XX:+ExitOnOutOfMemoryError",
    "-Djdk.nio.maxCachedBufferSize=1024",
    "-Dio.netty.tryReflectionSetAccessible=true",
    "-Djdk.tls.ephemeralDHKeySize=2048",
    "-Djdk.tls.rejectClientInitiatedRenegotiation=true",
    "--add-opens=java.base/java.nio=ALL-UNNAMED",
    "--add-opens=java.base/java.io=ALL-UNNAMED",
    "--add-opens=java.base/sun.nio.ch=ALL-UNNAMED",
    "--enable-native-access=ALL-UNNAMED",
    "-Dlog4j2.disable.jmx=true",
    "-Dfile.encoding=UTF-8",
]


class Neo4jUnavailable(RuntimeError):
    """Neo4j cannot be provided here: Java or Maven is missing, the download
    failed, or the server did not start.  ``str(exc)`` gives the reason; a
    conftest can ``pytest.skip`` on it outside CI and fail inside CI."""


def _env_float(name: str, default: float) -> float:
    value = os.environ.get(name)
    if not value:
        return default
    try:
        return float(value)
    except ValueError:
        raise Neo4jUnavailable(f"{name}={value!r} is not a number of seconds") from None


def cache_dir() -> Path:
    """The cache folder: ``$CAPMAP_NEO4J_CACHE`` or ``<repo>/.cache/neo4j``."""
    override = os.environ.get("CAPMAP_NEO4J_CACHE")
    return Path(override).expanduser().resolve() if override else REPO_ROOT / ".cache" / "neo4j"


# --------------------------------------------------------------------------
# Java and Maven
# --------------------------------------------------------------------------


def _java_major(java: str) -> int | None:
    try:
        proc = subprocess.run([java, "-version"], check=False, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return None
    match = re.search(r'version "(\d+)(?:\.(\d+))?', proc.stderr + proc.stdout)
    if not match:
        return None
    major = int(match.group(1))
    if major == 1 and match.group(2):  # "1.8.0_x"
        major = int(match.group(2))
    return major


def find_java() -> tuple[str, int]:
    """Return ``(java_executable, major_version)`` for a Java Neo4j 5.26 runs on.

    Raises Neo4jUnavailable when none is found."""
    candidates: list[str] = []
    explicit = os.environ.get("CAPMAP_NEO4J_JAVA")
    if explicit:
        if not os.access(explicit, os.X_OK):
            raise Neo4jUnavailable(f"CAPMAP_NEO4J_JAVA={explicit} is not an executable")
        candidates.append(explicit)
    java_home = os.environ.get("JAVA_HOME")
    if java_home:
        candidates.append(os.path.join(java_home, "bin", "java"))
    on_path = shutil.which("java")
    if on_path:
        candidates.append(on_path)
    jvm_root = Path("/usr/lib/jvm")
    if jvm_root.is_dir():
        candidates.extend(str(p / "bin" / "java") for p in sorted(jvm_root.iterdir()))

    seen: set[str] = set()
    found: list[str] = []
    for cand in candidates:
        if not cand or not os.access(cand, os.X_OK):
            continue
        real = os.path.realpath(cand)
        if real in seen:
            continue
        seen.add(real)
        major = _java_major(cand)
        found.append(f"{cand} (Java {major})")
        if major in SUPPORTED_JAVA:
            return cand, major
        if explicit and cand == explicit:
            raise Neo4jUnavailable(
                f"CAPMAP_NEO4J_JAVA={explicit} is Java {major}; Neo4j {NEO4J_VERSION} "
                f"needs Java {' or '.join(map(str, SUPPORTED_JAVA))}"
            )
    if found:
        raise Neo4jUnavailable(
            f"no Java {' or '.join(map(str, SUPPORTED_JAVA))} found for Neo4j "
            f"{NEO4J_VERSION}; found only: {', '.join(found)}"
        )
    raise Neo4jUnavailable(
        "Java not found (need a JDK/JRE 17 or 21: set JAVA_HOME or CAPMAP_NEO4J_JAVA, "
        "or install it, e.g. apt-get install openjdk-17-jre-headless)"
    )


def find_maven() -> str:
    """Return the mvn executable; raises Neo4jUnavailable when missing."""
    explicit = os.environ.get("CAPMAP_NEO4J_MVN")
    if explicit:
        if os.access(explicit, os.X_OK):
            return explicit
        raise Neo4jUnavailable(f"CAPMAP_NEO4J_MVN={explicit} is not an executable")
    mvn = shutil.which("mvn")
    if not mvn:
        raise Neo4jUnavailable(
            "Maven (mvn) not found; it is needed once to fetch the Neo4j jars into "
            f"{cache_dir()} (install it, e.g. apt-get install maven, or set CAPMAP_NEO4J_MVN)"
        )
    return mvn


# --------------------------------------------------------------------------
# Artefacts
# --------------------------------------------------------------------------


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """An exclusive inter-process lock (so parallel test workers download once)."""
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def _lib_complete(lib: Path, version: str) -> bool:
    return (lib / ".complete").is_file() and (lib / f"neo4j-{version}.jar").is_file()


def ensure_artifacts(
    version: str = NEO4J_VERSION,
    *,
    timeout: float | None = None,
    java: str | None = None,
    log=None,
) -> Path:
    """Make sure the server's jars are in ``<cache>/<version>/lib`` and return
    that folder.  Runs Maven only when they are missing (its output goes to
    ``<cache>/mvn-<version>.log``).  Raises Neo4jUnavailable on failure."""
    root = cache_dir()
    lib = root / version / "lib"
    if _lib_complete(lib, version):
        return lib

    root.mkdir(parents=True, exist_ok=True)
    gitignore = root / ".gitignore"
    if not gitignore.exists():
        gitignore.write_text("# fetched by tests/neo4j_server.py; never commit\n*\n")

    with _file_lock(root / ".lock"):
        if _lib_complete(lib, version):  # another process did it meanwhile
            return lib
        mvn = find_maven()
        if not POM.is_file():
            raise Neo4jUnavailable(f"{POM} is missing")
        if timeout is None:
            timeout = _env_float("CAPMAP_NEO4J_DOWNLOAD_TIMEOUT", 1200.0)
        staging = root / version / f"lib.partial-{os.getpid()}"
        shutil.rmtree(staging, ignore_errors=True)
        m2 = root / "m2"
        log_path = root / f"mvn-{version}.log"
        cmd = [
            mvn,
            "-B",
            "--no-transfer-progress",
            "-Dstyle.color=never",
            "-f",
            str(POM),
            f"-Dmaven.repo.local={m2}",
            f"-Dneo4j.version={version}",
            "dependency:copy-dependencies",
            f"-DoutputDirectory={staging}",
        ]
        env = dict(os.environ)
        if java:
            env["JAVA_HOME"] = str(Path(os.path.realpath(java)).parent.parent)
        env.setdefault("MAVEN_OPTS", "-Xmx512m")
        if log:
            log(f"fetching Neo4j {version} jars with Maven (log: {log_path}) ...")
        started = time.monotonic()
        with open(log_path, "w") as out:
            out.write("$ " + " ".join(cmd) + "\n")
            out.flush()
            try:
                proc = subprocess.run(
                    cmd,
                    check=False,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    cwd=str(POM.parent),
                    env=env,
                    timeout=timeout,
                )
            except subprocess.TimeoutExpired:
                shutil.rmtree(staging, ignore_errors=True)
                raise Neo4jUnavailable(
                    f"Maven did not fetch Neo4j {version} within {timeout:.0f}s; see {log_path}"
                ) from None
            except OSError as exc:
                raise Neo4jUnavailable(f"could not run Maven ({mvn}): {exc}") from None
        if proc.returncode != 0 or not (staging / f"neo4j-{version}.jar").is_file():
            shutil.rmtree(staging, ignore_errors=True)
            tail = _tail(log_path, 15)
            raise Neo4jUnavailable(
                f"Maven failed to fetch Neo4j {version} (exit {proc.returncode}); see {log_path}:\n{tail}"
            )
        jars = sorted(p.name for p in staging.glob("*.jar"))
        (staging / ".complete").write_text("\n".join(jars) + "\n")
        shutil.rmtree(lib, ignore_errors=True)
        os.replace(staging, lib)
        # Maven's local repository was only scratch space: the jars are in lib/.
        shutil.rmtree(m2, ignore_errors=True)
        if log:
            log(f"fetched {len(jars)} jars in {time.monotonic() - started:.1f}s into {lib}")
    return lib


def _tail(path: Path, lines: int) -> str:
    try:
        with open(path, errors="replace") as fh:
            return "".join(fh.readlines()[-lines:])
    except OSError:
        return ""


# --------------------------------------------------------------------------
# Ports, Bolt handshake
# --------------------------------------------------------------------------


def _size_bytes(size: str) -> int:
    """'512m' -> bytes (JVM/Neo4j size notation)."""
    match = re.fullmatch(r"\s*(\d+)\s*([kmgt]?)i?b?\s*", size.lower())
    if not match:
        raise ValueError(f"not a memory size: {size!r}")
    exponent = {"": 0, "k": 1, "m": 2, "g": 3, "t": 4}[match.group(2)]
    return int(match.group(1)) * 1024**exponent


def _free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def _bolt_handshake(host: str, port: int, timeout: float = 2.0) -> bool:
    """True when ``host:port`` speaks Bolt (agrees on a protocol version)."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            # magic preamble + four proposals: 5.x (range 0-8), 4.4 (range 4..4), none, none
            sock.sendall(b"\x60\x60\xb0\x17" + b"\x00\x08\x08\x05" + b"\x00\x04\x04\x04" + b"\x00" * 8)
            reply = b""
            while len(reply) < 4:
                chunk = sock.recv(4 - len(reply))
                if not chunk:
                    return False
                reply += chunk
            return reply != b"\x00\x00\x00\x00"
    except OSError:
        return False


# --------------------------------------------------------------------------
# The server
# --------------------------------------------------------------------------

# Strong references: a started server must not be garbage-collected (and its
# JVM orphaned) just because the caller dropped it; stop() removes it.
_RUNNING: set[Neo4jServer] = set()


@atexit.register
def _stop_all() -> None:
    for server in list(_RUNNING):
        with contextlib.suppress(Exception):
            server.stop()


_HOME_PREFIX = "capmap-neo4j-"


def _sweep_stale_homes() -> None:
    """Delete temporary homes left by processes that died without cleaning up
    (SIGKILL): those whose owner and JVM pids (in ``owner.pid``) are gone."""
    tmp = Path(tempfile.gettempdir())
    for home in tmp.glob(_HOME_PREFIX + "*"):
        try:
            pids = [int(x) for x in (home / "owner.pid").read_text().split()]
            if not pids or time.time() - home.stat().st_mtime < 5:
                continue
        except (OSError, ValueError):
            continue
        if not any(_pid_alive(pid) for pid in pids):
            shutil.rmtree(home, ignore_errors=True)


def _child_setup() -> None:  # runs in the child between fork and exec
    os.setsid()  # own process group: a terminal's Ctrl-C reaches only Python
    if sys.platform.startswith("linux"):
        # Have the kernel SIGTERM the JVM if the Python process dies without
        # running atexit (SIGKILL, crash).
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            PR_SET_PDEATHSIG = 1
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        except Exception:  # noqa: BLE001, S110 - best effort; atexit still stops it
            pass


class Neo4jServer:
    """A Neo4j Community server on 127.0.0.1, in its own temporary home.

    Attributes (valid after :meth:`start`):

    ``uri``       ``bolt://127.0.0.1:<port>``
    ``host``      ``127.0.0.1``
    ``port``      the Bolt port
    ``user``      ``"neo4j"``
    ``password``  the password (random unless given; with ``auth=False``
                  the server accepts any credentials)
    ``auth``      ``(user, password)``, handy for ``GraphDatabase.driver``
    ``http_uri``  ``http://127.0.0.1:<port>`` when ``http=True`` else ``None``
    ``home``      the server's temporary home (conf/, data/, logs/)
    ``version``   the Neo4j version
    ``pid``       the JVM's process id
    ``console_log`` path of the server's stdout/stderr

    Sizing: ``heap`` / ``heap_initial`` (``-Xmx`` / ``-Xms``), ``pagecache``,
    ``extra_config`` (more ``neo4j.conf`` settings) and ``jvm_options`` (more
    JVM flags, after the defaults, so ``-XX:-UseG1GC -XX:+UseParallelGC``
    swaps the collector), as ``bench/ingest.py`` does for a bulk import.
    """

    def __init__(
        self,
        *,
        version: str = NEO4J_VERSION,
        password: str | None = None,
        auth: bool = True,
        port: int | None = None,
        http: bool = False,
        heap: str | None = None,
        heap_initial: str = "128m",
        pagecache: str = "256m",
        start_timeout: float | None = None,
        download_timeout: float | None = None,
        keep_home: bool = False,
        extra_config: dict[str, str] | None = None,
        jvm_options: list[str] | None = None,
        log=None,
    ) -> None:
        self.version = version
        self.user = "neo4j"
        self.password = password or "pw-" + secrets.token_hex(8)
        if len(self.password) < 8:
            raise ValueError("Neo4j requires a password of at least 8 characters")
        self.auth_enabled = auth
        self.host = "127.0.0.1"
        self._requested_port = port
        self.port: int | None = None
        self.http = http
        self.http_port: int | None = None
        self.heap = heap or os.environ.get("CAPMAP_NEO4J_HEAP") or "512m"
        self.heap_initial = heap_initial if _size_bytes(heap_initial) <= _size_bytes(self.heap) else self.heap
        self.pagecache = pagecache
        self.start_timeout = (
            start_timeout if start_timeout is not None else _env_float("CAPMAP_NEO4J_START_TIMEOUT", 180.0)
        )
        self.download_timeout = download_timeout
        self.keep_home = keep_home
        self.extra_config = dict(extra_config or {})
        self.jvm_options = list(jvm_options or [])
        self._log = log
        self.home: Path | None = None
        self.console_log: Path | None = None
        self._proc: subprocess.Popen | None = None
        self._console_fh: IO[bytes] | None = None
        self._lock = threading.Lock()
        self.timings: dict[str, float] = {}

    # -- public API -------------------------------------------------------

    @property
    def uri(self) -> str:
        if self.port is None:
            raise RuntimeError("server not started")
        return f"bolt://{self.host}:{self.port}"

    @property
    def auth(self) -> tuple[str, str]:
        return (self.user, self.password)

    @property
    def http_uri(self) -> str | None:
        return f"http://{self.host}:{self.http_port}" if self.http_port else None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def is_running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> Self:
        """Fetch the jars if needed, start the server and wait until it answers
        queries.  Returns self.  Raises Neo4jUnavailable on any failure (the
        half-started server is cleaned up)."""
        with self._lock:
            if self.is_running():
                return self
            t0 = time.monotonic()
            java, _major = find_java()
            lib = ensure_artifacts(self.version, timeout=self.download_timeout, java=java, log=self._log)
            t1 = time.monotonic()
            self.timings["artifacts"] = t1 - t0
            attempts = 1 if self._requested_port else 3
            last_error: Exception | None = None
            for _ in range(attempts):
                try:
                    self._start_once(java, lib)
                    break
                except _PortInUse as exc:
                    last_error = exc
                    self._cleanup()
                except BaseException:
                    self._cleanup()
                    raise
            else:
                raise Neo4jUnavailable(f"could not bind a Bolt port: {last_error}")
            self.timings["server"] = time.monotonic() - t1
            self.timings["total"] = time.monotonic() - t0
            _RUNNING.add(self)
            return self

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the server (SIGTERM, then SIGKILL after ``timeout`` seconds),
        wait for the JVM to exit and delete the temporary home."""
        with self._lock:
            self._cleanup(timeout)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = f"uri={self.uri}" if self.port else "not started"
        return f"<Neo4jServer {self.version} {state}>"

    # -- internals --------------------------------------------------------

    def _start_once(self, java: str, lib: Path) -> None:
        _sweep_stale_homes()
        self.home = Path(tempfile.mkdtemp(prefix=_HOME_PREFIX))
        for sub in ("conf", "data", "logs", "run", "plugins", "import", "licenses"):
            (self.home / sub).mkdir()
        (self.home / "owner.pid").write_text(f"{os.getpid()}\n")
        self.port = self._requested_port or _free_port(self.host)
        if self.http:
            self.http_port = _free_port(self.host)
        self._write_config()
        classpath = f"{lib}{os.sep}*"
        env = dict(os.environ)
        env["NEO4J_HOME"] = str(self.home)
        env["NEO4J_CONF"] = str(self.home / "conf")
        env.pop("NEO4J_AUTH", None)
        env.pop("JAVA_TOOL_OPTIONS", None)

        if self.auth_enabled:
            admin = subprocess.run(
                [
                    java,
                    "-Xmx128m",
                    "-XX:TieredStopAtLevel=1",
                    "-cp",
                    classpath,
                    ADMIN_TOOL,
                    "dbms",
                    "set-initial-password",
                    self.password,
                ],
                check=False,
                capture_output=True,
                text=True,
                env=env,
                timeout=120,
                stdin=subprocess.DEVNULL,
            )
            if admin.returncode != 0:
                raise Neo4jUnavailable(
                    "neo4j-admin dbms set-initial-password failed "
                    f"(exit {admin.returncode}): {admin.stdout}{admin.stderr}"
                )

        self.console_log = self.home / "logs" / "console.log"
        self._console_fh = open(self.console_log, "wb")  # noqa: SIM115 - closed in _cleanup
        cmd = [
            java,
            f"-Xms{self.heap_initial}",
            f"-Xmx{self.heap}",
            *_JVM_FLAGS,
            *self.jvm_options,
            "-cp",
            classpath,
            ENTRY_POINT,
            f"--home-dir={self.home}",
            f"--config-dir={self.home / 'conf'}",
            "--console-mode",
        ]
        try:
            self._proc = subprocess.Popen(
                cmd,
                stdout=self._console_fh,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=str(self.home),
                env=env,
                preexec_fn=_child_setup if os.name == "posix" else None,  # noqa: PLW1509
            )
        except OSError as exc:
            raise Neo4jUnavailable(f"could not run {java}: {exc}") from None
        (self.home / "owner.pid").write_text(f"{os.getpid()}\n{self._proc.pid}\n")
        self._wait_ready()

    def _write_config(self) -> None:
        assert self.home is not None
        conf = {
            "server.default_listen_address": self.host,
            "server.default_advertised_address": self.host,
            "server.bolt.enabled": "true",
            "server.bolt.listen_address": f"{self.host}:{self.port}",
            "server.bolt.advertised_address": f"{self.host}:{self.port}",
            "server.bolt.tls_level": "DISABLED",
            "server.http.enabled": "true" if self.http else "false",
            "server.https.enabled": "false",
            "dbms.security.auth_enabled": "true" if self.auth_enabled else "false",
            "server.memory.pagecache.size": self.pagecache,
            # The heap is set with -Xms/-Xmx (we bypass the bootloader that
            # reads these); they are written for the record only.
            "server.memory.heap.initial_size": self.heap_initial,
            "server.memory.heap.max_size": self.heap,
            "db.tx_log.rotation.retention_policy": "1 files",
            "dbms.usage_report.enabled": "false",
            "server.logs.gc.enabled": "false",
            # Bolt's netty shutdown waits 5s quiet period per connector by default.
            "internal.dbms.bolt.netty_server_shutdown_quiet_period": "0",
            "internal.dbms.bolt.netty_server_shutdown_timeout": "2s",
        }
        if self.http:
            conf["server.http.listen_address"] = f"{self.host}:{self.http_port}"
            conf["server.http.advertised_address"] = f"{self.host}:{self.http_port}"
        conf.update(self.extra_config)
        text = "".join(f"{k}={v}\n" for k, v in conf.items())
        (self.home / "conf" / "neo4j.conf").write_text(text)

    def _console_text(self) -> str:
        try:
            return self.console_log.read_text(errors="replace") if self.console_log else ""
        except OSError:
            return ""

    def _wait_ready(self) -> None:
        assert self._proc is not None and self.port is not None
        deadline = time.monotonic() + self.start_timeout
        started = False
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                text = self._console_text()
                if "already in use" in text or "Address in use" in text:
                    raise _PortInUse(f"port {self.port} taken")
                raise Neo4jUnavailable(
                    f"Neo4j exited with code {self._proc.returncode} while starting; "
                    f"console output:\n{text[-4000:]}\n{self._debug_log_tail()}"
                )
            if not started:
                started = "Started." in self._console_text()
            if started and _bolt_handshake(self.host, self.port):
                break
            time.sleep(0.2)
        else:
            raise Neo4jUnavailable(
                f"Neo4j did not become ready on {self.uri} within {self.start_timeout:.0f}s; "
                f"console output:\n{self._console_text()[-4000:]}"
            )
        self._verify_query(deadline)

    def _verify_query(self, deadline: float) -> None:
        """Run ``RETURN 1`` through the official driver, when it is installed."""
        try:
            from neo4j import GraphDatabase  # type: ignore
        except ImportError:
            return
        last: Exception | None = None
        while time.monotonic() < deadline:
            try:
                with GraphDatabase.driver(self.uri, auth=self.auth) as driver:
                    records, _, _ = driver.execute_query("RETURN 1 AS ok")
                    if records and records[0]["ok"] == 1:
                        return
            except Exception as exc:  # noqa: BLE001 - transient while databases come online
                last = exc
                if self._proc is not None and self._proc.poll() is not None:
                    break
                time.sleep(0.5)
        raise Neo4jUnavailable(f"Neo4j on {self.uri} did not answer a query: {last!r}")

    def _debug_log_tail(self) -> str:
        if not self.home:
            return ""
        return _tail(self.home / "logs" / "debug.log", 30)

    def _cleanup(self, timeout: float = 30.0) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                proc.wait(timeout=30)
        if self._console_fh is not None:
            with contextlib.suppress(OSError):
                self._console_fh.close()
            self._console_fh = None
        if self.home is not None and not self.keep_home:
            shutil.rmtree(self.home, ignore_errors=True)
        _RUNNING.discard(self)


class _PortInUse(Neo4jUnavailable):
    pass


# --------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------


def _selftest(args) -> int:
    try:
        from neo4j import GraphDatabase  # type: ignore
    except ImportError:
        print("selftest needs the neo4j Python driver", file=sys.stderr)
        return 2
    t0 = time.monotonic()
    with Neo4jServer(log=_say, heap=args.heap) as server:
        t_ready = time.monotonic() - t0
        print(f"ready in {t_ready:.1f}s ({server.timings}) at {server.uri}")
        with GraphDatabase.driver(server.uri, auth=server.auth) as driver:
            driver.execute_query("CREATE CONSTRAINT rep_id IF NOT EXISTS FOR (n:Rep) REQUIRE n.id IS UNIQUE")
            rows = [{"id": i} for i in range(1000)]
            driver.execute_query("UNWIND $rows AS r MERGE (n:Rep {id: r.id})", rows=rows)
            driver.execute_query("UNWIND $rows AS r MERGE (n:Rep {id: r.id})", rows=rows)
            records, _, _ = driver.execute_query("MATCH (n:Rep) RETURN count(n) AS c")
            count = records[0]["c"]
            comp, _, _ = driver.execute_query("CALL dbms.components()")
            print(f"count={count} components={[dict(r) for r in comp]}")
        pid = server.pid
        t1 = time.monotonic()
    print(f"stopped in {time.monotonic() - t1:.1f}s; total {time.monotonic() - t0:.1f}s")
    alive = pid is not None and _pid_alive(pid)
    print(f"jvm pid {pid} alive after stop: {alive}")
    return 0 if count == 1000 and not alive else 1


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    p_start = sub.add_parser("start", help="run a server in the foreground until Ctrl-C")
    p_start.add_argument("--port", type=int, default=None)
    p_start.add_argument("--password", default=None)
    p_start.add_argument("--no-auth", action="store_true")
    p_start.add_argument("--http", action="store_true", help="also enable HTTP")
    p_start.add_argument("--heap", default=None, help="max heap (default 512m)")
    p_start.add_argument("--keep-home", action="store_true")
    sub.add_parser("download", help="only fetch the jars into the cache")
    p_self = sub.add_parser("selftest", help="start, run a real query, stop")
    p_self.add_argument("--heap", default=None, help="max heap (default 512m)")
    args = parser.parse_args(argv)

    try:
        if args.cmd == "download":
            java, _ = find_java()
            t0 = time.monotonic()
            lib = ensure_artifacts(java=java, log=_say)
            print(f"{lib} ({time.monotonic() - t0:.1f}s)")
            return 0
        if args.cmd == "selftest":
            return _selftest(args)

        server = Neo4jServer(
            port=args.port,
            password=args.password,
            auth=not args.no_auth,
            http=args.http,
            heap=args.heap,
            keep_home=args.keep_home,
            log=_say,
        )
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        server.start()
        print(f"NEO4J_URI={server.uri}")
        print(f"NEO4J_USER={server.user}")
        print(f"NEO4J_PASSWORD={server.password}")
        if server.http_uri:
            print(f"NEO4J_HTTP_URI={server.http_uri}")
        print(
            f"# Neo4j {server.version} pid {server.pid}, home {server.home}; "
            f"ready in {server.timings['total']:.1f}s. Ctrl-C to stop.",
            flush=True,
        )
        while not stop.is_set() and server.is_running():
            stop.wait(0.5)
        if not server.is_running() and not stop.is_set():
            print(
                "server exited by itself:\n" + server._console_text()[-2000:],
                file=sys.stderr,
            )
        server.stop()
        return 0
    except Neo4jUnavailable as exc:
        print(f"Neo4j unavailable: {exc}", file=sys.stderr)
        return 3


if __name__ == "__main__":
    sys.exit(main())
