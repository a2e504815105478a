"""An instance with its seeder running (a free port on 127.0.0.1), and its users."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient

from holdfast.accounts.models import Role
from holdfast.app import create_app
from holdfast.instance import Instance
from tests.instance.helpers import User, make_dataset, make_user
from tests.torrents.clients import free_port


@dataclass
class World:
    client: TestClient
    instance: Instance
    uploader: User
    member: User
    moderator: User
    dataset: str

    @property
    def seeder(self) -> Any:
        return self.instance.services["seeder"]


@pytest.fixture
def make_world(make_settings: Callable[..., Any]) -> Iterator[Callable[..., World]]:
    opened: list[TestClient] = []

    def make(**overrides: Any) -> World:
        defaults = {"seeder_port": 0, "federation": False, "port": free_port()}
        settings = make_settings(**(defaults | overrides))
        app = create_app(settings)
        client = TestClient(app, base_url=settings.base_url)
        client.__enter__()
        opened.append(client)
        instance: Instance = app.state.instance
        uploader = make_user(instance, f"uploader{len(opened)}", Role.uploader)
        member = make_user(instance, f"member{len(opened)}", Role.member)
        moderator = make_user(instance, f"mod{len(opened)}", Role.moderator)
        dataset = make_dataset(instance, uploader)
        return World(client, instance, uploader, member, moderator, dataset.slug)

    yield make
    for client in reversed(opened):
        client.__exit__(None, None, None)


@pytest.fixture
def world(make_world: Callable[..., World]) -> World:
    return make_world()
