"""Typed dependencies of the routes: the loaded models, settings, metrics, prospect store, channel advisor.

`create_app` puts one of each on `app.state`; these are the only readers of it, so that a route names what it
needs in its signature (`models: ModelsDep`) and tests can swap any of them with `app.dependency_overrides`.
They are `async def`: a sync dependency would cost every request a threadpool hand-off.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import Depends, Request

from serving.channels import ChannelAdvisor
from serving.metrics import Metrics
from serving.runtime import ModelRuntime, ModelSet
from serving.settings import Settings


async def current_models(request: Request) -> ModelSet:
    """The model set serving now; a request keeps this one even if a reload swaps in another meanwhile."""
    return request.app.state.runtime.current


async def model_runtime(request: Request) -> ModelRuntime:
    return request.app.state.runtime


async def app_settings(request: Request) -> Settings:
    return request.app.state.settings


async def app_metrics(request: Request) -> Metrics:
    return request.app.state.metrics


async def prospects_store(request: Request) -> Path:
    """The prospect store's path (`Settings.prospects_path`): a file that may not exist yet."""
    return request.app.state.settings.prospects_path()


async def channel_advisor(request: Request) -> ChannelAdvisor:
    return request.app.state.advisor


ModelsDep = Annotated[ModelSet, Depends(current_models)]
RuntimeDep = Annotated[ModelRuntime, Depends(model_runtime)]
SettingsDep = Annotated[Settings, Depends(app_settings)]
MetricsDep = Annotated[Metrics, Depends(app_metrics)]
StoreDep = Annotated[Path, Depends(prospects_store)]
AdvisorDep = Annotated[ChannelAdvisor, Depends(channel_advisor)]
