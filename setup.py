"""Build hook: the metadata lives in pyproject.toml; this only keeps old files out of wheels.

setuptools builds in ``build/lib`` inside the checkout and never empties it, so a file deleted
or renamed since an earlier build (a model folder, a module) would still be packed into the
next wheel. ``build_py`` therefore starts from an empty ``build/lib/unspin``.
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py


class CleanBuildPy(build_py):
    def run(self) -> None:
        shutil.rmtree(Path(self.build_lib) / "unspin", ignore_errors=True)
        super().run()


setup(cmdclass={"build_py": CleanBuildPy})
