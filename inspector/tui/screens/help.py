"""The ``?`` screen: what each key does and how to read the view."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Markdown

HELP = """\
# kinspect

**Left**: the layer tree. Nested models and wrappers expand (→ / space), ← collapses.
`⇄xN` marks a layer shared by N calls; ✖ ▲ ● mark error / warning / info findings.

**Right**: tabs for the selected layer: *Config*, *Weights* (statistics and a histogram of the
highlighted variable), *Findings* and *Activations* (the probe's per-layer numbers).

**Bottom**: every finding, worst first (Enter jumps to its layer, `d` shows the rule's
documentation), and the probe: verdicts, output classes, variation per layer.

| key | action |
|-----|--------|
| `?` | this help |
| `1`-`4` | Config / Weights / Findings / Activations tab |
| `/` | filter the tree by layer name or class (Escape clears) |
| `f` | focus the findings list |
| `p` | run the probe again |
| Escape | stop the weight statistics pass, or cancel a running probe |
| `e` | export the JSON report |
| ctrl+p | command palette: jump to any layer by name |
| `q` | quit |
"""


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,question_mark", "dismiss", "Close")]
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll {
        width: 90%; max-width: 90; height: 90%;
        border: round $accent; background: $surface; padding: 0 1;
    }
    """

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield Markdown(HELP)
