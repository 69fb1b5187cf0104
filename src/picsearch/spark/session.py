"""A SparkSession set up for picsearch's jobs, and the Spark import with its install hint."""

from __future__ import annotations

import os
import re
import shutil
import sys
import tempfile
from typing import Any

from ..errors import InvalidInput, PicsearchError, require

__all__ = ["pyspark", "spark_session", "check_java", "local_master"]

#: Attempts per task in local mode (a cluster's default): local[N] alone never retries.
LOCAL_TASK_ATTEMPTS = 4

_LOG4J = """\
rootLogger.level = {level}
rootLogger.appenderRef.stderr.ref = console
appender.console.type = Console
appender.console.name = console
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{{HH:mm:ss}} %p %c{{1}}: %m%n%ex
logger.native.name = org.apache.hadoop.util.NativeCodeLoader
logger.native.level = error
"""


def pyspark() -> Any:
    """The pyspark module, or MissingDependency with the install hint."""
    return require("pyspark", package="pyspark", extra="spark", purpose="--engine spark")


def check_java() -> None:
    """Spark runs on the JVM: say so plainly when there is none."""
    if not os.environ.get("JAVA_HOME") and shutil.which("java") is None:
        raise PicsearchError(
            "--engine spark needs a Java runtime (17 or newer): install one, e.g. "
            "'apt-get install default-jre-headless', or set JAVA_HOME"
        )


def local_master(master: str) -> str:
    """``local[N]`` gets task retries like a cluster (``local[N,4]``); others are unchanged."""
    match = re.fullmatch(r"local(?:\[(\d+|\*)\])?", master.strip())
    if not match:
        return master
    return f"local[{match.group(1) or 1},{LOCAL_TASK_ATTEMPTS}]"


def spark_session(
    master: str | None = None, *, app_name: str = "picsearch", log_level: str = "warn"
) -> Any:
    """The active SparkSession, or a new one for ``master`` (default: what spark-submit set,
    else ``local[*]``).

    Local sessions bind to 127.0.0.1 without the web UI, use the running
    Python for their workers, and retry failed tasks like a cluster does.
    Spark's own log lines below ``log_level`` are left out.
    """
    sql = require("pyspark.sql", package="pyspark", extra="spark", purpose="--engine spark")
    active = sql.SparkSession.getActiveSession()
    if active is not None:
        return active
    check_java()
    builder = sql.SparkSession.builder.appName(app_name)
    if master is None and "PYSPARK_GATEWAY_PORT" in os.environ:
        master = ""  # launched by spark-submit: its --master stands
    else:
        master = master or os.environ.get("MASTER") or "local[*]"
        builder = builder.master(local_master(master))
    if master.startswith("local"):
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
        builder = (
            builder.config("spark.driver.host", "127.0.0.1")
            .config("spark.driver.bindAddress", "127.0.0.1")
            .config("spark.ui.enabled", "false")
            .config("spark.sql.shuffle.partitions", "4")
        )
    log_config = os.path.join(tempfile.gettempdir(), f"picsearch-log4j2-{log_level}.properties")
    with open(log_config, "w") as handle:
        handle.write(_LOG4J.format(level=log_level))
    builder = builder.config("spark.ui.showConsoleProgress", "false").config(
        "spark.driver.extraJavaOptions", f"-Dlog4j2.configurationFile={log_config}"
    )
    try:
        return builder.getOrCreate()
    except Exception as exc:  # the JVM failed to start: Java missing or broken
        message = f"Spark did not start for master {master!r}: {_first_line(exc)}"
        raise InvalidInput(message) from None


def _first_line(exc: BaseException) -> str:
    lines = [line for line in str(exc).splitlines() if line.strip()]
    return lines[0].strip() if lines else type(exc).__name__
