"""Builds the native parts with the system C compiler at install time:
the superv._kernel and superv._fastpath extensions (setuptools does them)
and the superv-launch and superv-watchdog executables, which go into the
package beside them."""
import os
import subprocess
import sysconfig

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

EXECUTABLES = {"superv-launch": os.path.join("native", "launcher.c"),
               "superv-watchdog": os.path.join("native", "watchdog.c")}


class BuildWithLauncher(build_ext):
    def run(self):
        super().run()
        package_dir = os.path.dirname(self.get_ext_fullpath("superv._kernel"))
        os.makedirs(package_dir, exist_ok=True)
        compiler = os.environ.get("CC") or sysconfig.get_config_var("CC").split()[0] or "cc"
        for name, source in EXECUTABLES.items():
            subprocess.check_call([compiler, "-O2", "-Wall", "-Werror", "-o", os.path.join(package_dir, name), source])


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
