"""Box settings and users."""
from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from ips import control
from webui import queries, security
from webui.deps import CsrfDep, StoreDep, UserDep
from webui.models import Done, NewUser, PasswordChange, SettingsUpdate

router = APIRouter(tags=["settings"])
UserName = Annotated[str, Path(max_length=32)]


@router.get("/settings", summary="Failure policy, learning period, automatic quarantine")
def get_settings(store: StoreDep, _: UserDep) -> dict:
    return queries.box_settings(store.conn)


@router.put("/settings", summary="Change box settings (fields left out stay as they are)",
            response_model=Done, responses={400: {"description": "invalid"}})
def put_settings(body: SettingsUpdate, store: StoreDep, session: CsrfDep) -> Done:
    changed = control.update_settings(store, actor=session.user, **body.model_dump())
    return Done(detail=changed)


@router.get("/users", summary="Dashboard users")
def list_users(store: StoreDep, _: UserDep) -> list[dict]:
    return queries.users(store.conn)


@router.post("/users", summary="Add a user", response_model=Done,
             responses={400: {"description": "invalid or exists"}})
def add_user(body: NewUser, store: StoreDep, session: CsrfDep) -> Done:
    control.add_user(store, body.name, body.password, actor=session.user)
    return Done()


@router.put("/users/{name}/password", summary="Set a user's password (ends their sessions)",
            response_model=Done, responses={400: {"description": "invalid"},
                                            404: {"description": "no such user"}})
def set_password(name: UserName, body: PasswordChange, store: StoreDep, session: CsrfDep) -> Done:
    control.set_password(store, name, body.password, actor=session.user)
    if name != session.user:
        security.end_sessions_of(store.conn, name)
    return Done()


@router.delete("/users/{name}", summary="Delete a user (not the last one)", response_model=Done,
               responses={400: {"description": "last user"}, 404: {"description": "no such user"}})
def delete_user(name: UserName, store: StoreDep, session: CsrfDep) -> Done:
    control.delete_user(store, name, actor=session.user)
    security.end_sessions_of(store.conn, name)
    return Done()
