"""``PromptTemplate``: build prompts with the Liquid template language (needs python-liquid)."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any, NewType, Union
from uuid import UUID, uuid4

from ._exceptions import MissingDependencyError
from .prompt import Image, Prompt, PromptItem, Text, Tokens

__all__ = ["Placeholder", "PromptTemplate"]

Placeholder = NewType("Placeholder", UUID)
"""The id that stands for an image or token item inside a rendered template."""

_UUID_PATTERN = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _liquid_template(source: str) -> Any:
    try:
        from liquid import Template
    except ImportError as err:
        raise MissingDependencyError("python-liquid", "liquid", "PromptTemplate") from err
    return Template(source)


class PromptTemplate:
    """Build a :class:`Prompt` from a `Liquid <https://shopify.github.io/liquid/>`_ template.

    Images and token items are registered with :meth:`placeholder`; the returned placeholder
    is passed as a template variable where the item belongs. Unlike the official client,
    :meth:`to_prompt` keeps the registered placeholders, so a template renders any number of
    times.

    Example:
        >>> template = PromptTemplate(
        ...     '''{%- for name in names -%}Hello {{name}}!
        ... {% endfor -%}{{ image }}'''
        ... )
        >>> placeholder = template.placeholder(image)
        >>> prompt = template.to_prompt(names=["World", "Rutger"], image=placeholder)
    """

    def __init__(self, template_str: str) -> None:
        """Parse ``template_str`` (Liquid syntax)."""
        self.template = _liquid_template(template_str)
        self.non_text_items: dict[Placeholder, Union[Image, Tokens]] = {}

    def placeholder(self, prompt_item: Union[Image, Tokens]) -> Placeholder:
        """Register a non-text item and return the placeholder that embeds it."""
        placeholder = Placeholder(uuid4())
        self.non_text_items[placeholder] = prompt_item
        return placeholder

    @staticmethod
    def _join_character(first_item: PromptItem | None, second_item: Text) -> str:
        if (
            isinstance(first_item, Text)
            and not first_item.text[-1].isspace()
            and not second_item.text[0].isspace()
        ):
            return " "
        return ""

    def embed_prompt(self, prompt: Prompt) -> str:
        """Turn ``prompt`` into a string to pass as a template variable.

        Text items are joined with one space where neither side has whitespace; empty texts
        are skipped; other items become placeholders.
        """
        parts: list[str] = []
        last_item: PromptItem | None = None
        for item in prompt.items:
            if isinstance(item, Text):
                if not item.text:
                    continue
                parts.append(self._join_character(last_item, item))
                parts.append(item.text)
            else:
                parts.append(str(self.placeholder(item)))
            last_item = item
        return "".join(parts)

    def to_prompt(self, **kwargs: Any) -> Prompt:
        """Render the template with ``kwargs`` (passed to Liquid) into a :class:`Prompt`."""
        rendered: str = self.template.render(**kwargs)
        return Prompt(list(_items_from(rendered, self.non_text_items)))


def _items_from(
    rendered: str, items_by_placeholder: Mapping[Placeholder, Union[Image, Tokens]]
) -> Iterator[PromptItem]:
    last_end = 0
    if items_by_placeholder:
        for match in _UUID_PATTERN.finditer(rendered):
            item = items_by_placeholder.get(Placeholder(UUID(match.group())))
            if item is None:
                continue
            if last_end < match.start():
                yield Text.from_text(rendered[last_end : match.start()])
            yield item
            last_end = match.end()
    if last_end < len(rendered):
        yield Text.from_text(rendered[last_end:])
