"""Private helpers shared by every layer; the standard library only, no synctree imports."""
