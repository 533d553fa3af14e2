"""Which processor (and which endpoint, if any) handles which batch type: found by naming
convention or registered explicitly."""

from __future__ import annotations

import importlib
import inspect
import os
import pkgutil

from musingly_pipeline.batches.endpoints import ENDPOINT_SUFFIX, BaseEndpoint
from musingly_pipeline.batches.processor import SUFFIX, BaseProcessor
from musingly_pipeline.batches.errors import BatchError

# Packages every default registry discovers; an area that ships a processor adds its package here.
PROCESSOR_PACKAGES: tuple[str, ...] = ("musingly_pipeline.seed_units.processor",)
# Extra packages, comma-separated, for processors that live outside this project.
PROCESSOR_PACKAGES_ENV = "MUSINGLY_PROCESSOR_PACKAGES"


class ProcessorRegistry:
    """Maps batch types to processor classes, and to endpoint classes (``batches.endpoints``)."""

    def __init__(self) -> None:
        self._processors: dict[str, type[BaseProcessor]] = {}
        self._endpoints: dict[str, type[BaseEndpoint]] = {}
        self._endpoint_instances: dict[str, BaseEndpoint] = {}

    def register(self, processor_class: type, batch_type: str | None = None) -> type:
        """Register a processor or endpoint class (usable as a decorator); its batch type comes from its name."""
        if inspect.isclass(processor_class) and issubclass(processor_class, BaseEndpoint):
            table: dict[str, type] = self._endpoints
        elif inspect.isclass(processor_class) and issubclass(processor_class, BaseProcessor):
            table = self._processors
        else:
            raise BatchError("BATCH_PROCESSOR_INVALID",
                             f"{processor_class!r} is neither a BaseProcessor nor a BaseEndpoint subclass")
        batch_type = batch_type or processor_class.resolved_batch_type()
        current = table.get(batch_type)
        if current is not None and _qualname(current) != _qualname(processor_class):
            raise BatchError(
                "BATCH_DUPLICATE_TYPE",
                f"batch type {batch_type!r} is handled by both {_qualname(current)} and "
                f"{_qualname(processor_class)}; rename one or set its batch_type",
            )
        table[batch_type] = processor_class
        self._endpoint_instances.pop(batch_type, None)
        return processor_class

    def discover(self, package: str) -> list[str]:
        """Import ``package`` (and its submodules) and register every ``*Processor`` and ``*Endpoint``
        class defined there.

        Returns the batch types of the processors found.
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
                if cls.__module__ != module.__name__ or inspect.isabstract(cls):
                    continue
                if issubclass(cls, BaseProcessor) and cls is not BaseProcessor and cls.__name__.endswith(SUFFIX):
                    self.register(cls)
                    found.append(cls.resolved_batch_type())
                elif (issubclass(cls, BaseEndpoint) and cls is not BaseEndpoint
                      and cls.__name__.endswith(ENDPOINT_SUFFIX)):
                    self.register(cls)
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

    def endpoint(self, batch_type: str) -> BaseEndpoint | None:
        """The endpoint of ``batch_type`` (one instance per registry), or None if it has none."""
        instance = self._endpoint_instances.get(batch_type)
        if instance is None and batch_type in self._endpoints:
            instance = self._endpoint_instances.setdefault(batch_type, self._endpoints[batch_type]())
        return instance

    def check_endpoints(self) -> None:
        """Refuse (BATCH_PROCESSOR_INVALID) an endpoint whose batch type no processor handles: its
        hooks would never run, which is almost always a misspelt class name."""
        for batch_type, cls in sorted(self._endpoints.items()):
            if batch_type not in self._processors:
                known = ", ".join(self.batch_types) or "none registered"
                raise BatchError("BATCH_PROCESSOR_INVALID",
                                 f"{_qualname(cls)} serves batch type {batch_type!r}, which no processor handles "
                                 f"(known: {known}); rename it after its processor or set its batch_type")

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
