"""lab_toolkit: code the lab's flows share, installed as a package instead of copied between files.

    from lab_toolkit import __version__, describe_runtime, markdown_table

The version comes from the installed distribution's metadata, so it answers only when the package
was pip-installed: importing the source folder through sys.path raises PackageNotFoundError.
"""

from importlib.metadata import version

from lab_toolkit.reporting import markdown_table
from lab_toolkit.runtime import describe_runtime

__version__ = version("lab-toolkit")

__all__ = ["__version__", "describe_runtime", "markdown_table"]
