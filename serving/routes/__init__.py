"""One `APIRouter` per resource of the API; `serving.api.create_app` includes them in `ROUTERS` order."""
