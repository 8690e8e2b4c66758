"""Command palette entries: jump to any layer by name or path."""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

from textual.command import DiscoveryHit, Hit, Hits, Provider

if TYPE_CHECKING:
    from inspector.tui.app import KinspectApp


class LayerCommands(Provider):
    """One palette entry per layer; choosing it moves the tree cursor there."""

    def _targets(self) -> list[tuple[str, str]]:
        app: KinspectApp = self.app  # type: ignore[assignment]
        graph = app.report.graph
        return [(n.path, n.class_name) for n in graph.walk()]

    def _jump(self, path: str) -> None:
        app: KinspectApp = self.app  # type: ignore[assignment]
        app.jump_to(path)

    async def discover(self) -> Hits:
        for path, cls in self._targets()[:20]:
            yield DiscoveryHit(f"layer: {path}", partial(self._jump, path), help=cls)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for path, cls in self._targets():
            command = f"layer: {path}"
            score = matcher.match(command)
            if score > 0:
                yield Hit(score, matcher.highlight(command), partial(self._jump, path),
                          help=cls)
