"""The portal's HTTP layer (Starlette): pages, downloads, forms."""
