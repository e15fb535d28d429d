"""Builds the two native parts with the system C compiler at install time:
the superv._kernel extension (setuptools does it) and the superv-launch
executable, which goes into the package beside the extension."""
import os
import subprocess
import sysconfig

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

LAUNCHER_SOURCE = os.path.join("native", "launcher.c")


class BuildWithLauncher(build_ext):
    def run(self):
        super().run()
        package_dir = os.path.dirname(self.get_ext_fullpath("superv._kernel"))
        os.makedirs(package_dir, exist_ok=True)
        target = os.path.join(package_dir, "superv-launch")
        compiler = os.environ.get("CC") or sysconfig.get_config_var("CC").split()[0] or "cc"
        subprocess.check_call([compiler, "-O2", "-Wall", "-Werror", "-o", target, LAUNCHER_SOURCE])


setup(
    ext_modules=[
        Extension(
            "superv._kernel",
            sources=[os.path.join("native", "kernelmod.c")],
            extra_compile_args=["-Wall", "-Werror", "-O2"],
        ),
        Extension(
            "superv._fastpath",
            sources=[os.path.join("native", "fastpath.c")],
            extra_compile_args=["-Wall", "-Werror", "-O2"],
        ),
    ],
    cmdclass={"build_ext": BuildWithLauncher},
)
