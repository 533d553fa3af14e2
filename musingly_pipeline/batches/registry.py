"""Which processor handles which batch type: found by naming convention or registered explicitly."""

from __future__ import annotations

import importlib
import inspect
import os
import pkgutil

from musingly_pipeline.batches.processor import SUFFIX, BaseProcessor
from musingly_pipeline.storage.batches import BatchError

# Packages every default registry discovers; an area that ships a processor adds its package here.
PROCESSOR_PACKAGES: tuple[str, ...] = ("musingly_pipeline.seed_units.processor",)
# Extra packages, comma-separated, for processors that live outside this project.
PROCESSOR_PACKAGES_ENV = "MUSINGLY_PROCESSOR_PACKAGES"


class ProcessorRegistry:
    """Maps batch types to processor classes."""

    def __init__(self) -> None:
        self._processors: dict[str, type[BaseProcessor]] = {}

    def register(self, processor_class: type[BaseProcessor], batch_type: str | None = None) -> type[BaseProcessor]:
        """Register a processor class (usable as a decorator); its batch type comes from its name."""
        if not (inspect.isclass(processor_class) and issubclass(processor_class, BaseProcessor)):
            raise BatchError("BATCH_PROCESSOR_INVALID", f"{processor_class!r} is not a BaseProcessor subclass")
        batch_type = batch_type or processor_class.resolved_batch_type()
        current = self._processors.get(batch_type)
        if current is not None and _qualname(current) != _qualname(processor_class):
            raise BatchError(
                "BATCH_DUPLICATE_TYPE",
                f"batch type {batch_type!r} is handled by both {_qualname(current)} and "
                f"{_qualname(processor_class)}; rename one or set its batch_type",
            )
        self._processors[batch_type] = processor_class
        return processor_class

    def discover(self, package: str) -> list[str]:
        """Import ``package`` (and its submodules) and register every ``*Processor`` class defined there.

        Returns the batch types found.
        """
        try:
            root = importlib.import_module(package)
        except ImportError as exc:
            raise BatchError("BATCH_PROCESSOR_INVALID", f"cannot import processor package {package!r}: {exc}") from exc
        modules = [root]
        if hasattr(root, "__path__"):
            for info in pkgutil.walk_packages(root.__path__, prefix=root.__name__ + "."):
                modules.append(importlib.import_module(info.name))
        found = []
        for module in modules:
            for _, cls in inspect.getmembers(module, inspect.isclass):
                if (issubclass(cls, BaseProcessor) and cls is not BaseProcessor and cls.__module__ == module.__name__
                        and cls.__name__.endswith(SUFFIX) and not inspect.isabstract(cls)):
                    self.register(cls)
                    found.append(cls.resolved_batch_type())
        return found

    def get(self, batch_type: str) -> type[BaseProcessor]:
        try:
            return self._processors[batch_type]
        except KeyError:
            known = ", ".join(sorted(self._processors)) or "none registered"
            raise BatchError(
                "BATCH_UNKNOWN_TYPE",
                f"no processor handles batch type {batch_type!r} (known: {known}); "
                f"write a {''.join(p.title() for p in batch_type.split('_'))}{SUFFIX} and register it, or name "
                f"the package that holds it in {PROCESSOR_PACKAGES_ENV}",
                "batch_type",
            ) from None

    def create(self, batch_type: str) -> BaseProcessor:
        return self.get(batch_type)()

    @property
    def batch_types(self) -> list[str]:
        return sorted(self._processors)

    def __contains__(self, batch_type: str) -> bool:
        return batch_type in self._processors


def _qualname(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def default_registry(extra_packages: list[str] | tuple[str, ...] = (), env: dict[str, str] | None = None) -> ProcessorRegistry:
    """A registry with the project's processors, those in ``MUSINGLY_PROCESSOR_PACKAGES`` and ``extra_packages``."""
    env = os.environ if env is None else env
    registry = ProcessorRegistry()
    from_env = [p.strip() for p in env.get(PROCESSOR_PACKAGES_ENV, "").split(",") if p.strip()]
    for package in (*PROCESSOR_PACKAGES, *from_env, *extra_packages):
        registry.discover(package)
    return registry
