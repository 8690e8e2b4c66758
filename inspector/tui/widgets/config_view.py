"""The Config tab: the layer's normalized config as syntax-highlighted JSON.

A RichLog (a line-based scroll view) instead of a Static in a scroll container: replacing its
lines resizes only its own virtual canvas, not the screen's layout, which keeps cursor moves
through a big model cheap."""

from __future__ import annotations

import json
from typing import Any

from rich.syntax import Syntax
from textual.widgets import RichLog

from inspector.graph import LayerNode


class ConfigView(RichLog):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(wrap=False, highlight=False, markup=False, auto_scroll=False,
                         **kwargs)
        self._node: LayerNode | None = None

    def on_mount(self) -> None:
        self.app.theme_changed_signal.subscribe(self, lambda _theme: self._redraw())

    def show(self, node: LayerNode | None) -> None:
        self._node = node
        self._redraw()

    @property
    def text(self) -> str:
        return config_json(self._node) if self._node is not None else ""

    def _redraw(self) -> None:
        self.clear()
        if self._node is None:
            self.write("No layer selected.")
            return
        dark = self.app.current_theme.dark
        # ANSI themes carry no background, so the pane's own (theme) background shows.
        syntax = Syntax("", "json", theme="ansi_dark" if dark else "ansi_light")
        self.write(syntax.highlight(self.text), scroll_end=False)
        self.scroll_home(animate=False)


def config_json(node: LayerNode) -> str:
    header: dict[str, Any] = {"class_name": node.class_name}
    if node.module:
        header["module"] = node.module
    if node.registered_name:
        header["registered_name"] = node.registered_name
    header["config"] = node.config
    return json.dumps(header, indent=2, default=str, ensure_ascii=False)
