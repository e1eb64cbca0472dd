"""The build step pyproject.toml cannot say: compile the pages' message catalogues
(src/archer/locale/*/LC_MESSAGES/*.po) into .mo files, beside the .po in the source tree (for an
editable install) and in the built package. Everything else is in pyproject.toml."""

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent


def compile_catalogues(root: Path) -> list[Path]:
    """Compile each ``.po`` under ``root`` into its ``.mo``; the ``.mo`` files written."""
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    written = []
    for po in sorted(root.glob("*/LC_MESSAGES/*.po")):
        with po.open("rb") as f:
            catalog = read_po(f, locale=po.parent.parent.name)
        mo = po.with_suffix(".mo")
        with mo.open("wb") as f:
            write_mo(f, catalog)
        written.append(mo)
    return written


class BuildWithCatalogues(build_py):
    def run(self):
        compile_catalogues(HERE / "src" / "archer" / "locale")
        super().run()


setup(cmdclass={"build_py": BuildWithCatalogues})
