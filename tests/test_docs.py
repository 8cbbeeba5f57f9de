"""The docs are self-contained: every docs/ file they name exists, the README and the model card lead to the
model and the method catalogue near their top, and nothing points outside the repository."""

import re
from pathlib import Path

from meiscope.presentation.card import read_card, render_markdown

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def test_every_docs_path_they_name_exists():
    for page in PAGES:
        for name in set(re.findall(r"docs/([A-Za-z_]+\.md)", page.read_text())):
            assert (ROOT / "docs" / name).is_file(), (page.name, name)


def test_readme_and_model_card_lead_to_the_model_and_the_methods():
    top = "\n".join((ROOT / "README.md").read_text().splitlines()[:15])
    assert "](docs/MODEL.md)" in top and "](docs/METHODS.md)" in top
    folder = ROOT / "models" / "tdvae40"
    card = (folder / "MODEL_CARD.md").read_text()
    assert card == render_markdown(read_card(folder))  # the shipped card is what card.py renders
    head = "\n".join(card.splitlines()[:10])
    assert "(../../docs/MODEL.md)" in head and "(../../docs/METHODS.md)" in head
    assert (folder / "../../docs/METHODS.md").resolve().is_file()


def test_no_page_points_outside_the_repository():
    for page in PAGES:
        text = page.read_text()
        assert not re.search(r"\bSPEC\b(?!\.yaml)|\.\./shared|thesis section", text), page.name
