"""What the tests share, in one place (conftest files hold fixtures only):

- `http`: `Api`, a thin HTTP client of the shim;
- `waits`: `wait_for`, polling with a deadline (never a sleep for an effect);
- `records`: orgs, keys, projects, hosts, sessions and jobs made and read through the API;
- `redis_server`: `RedisServer`, a redis-server of its own on a free port;
- `stack`: `Stack`, real gunicorn, Celery worker and beat processes on a Redis of their own;
- `mesh_client`: `MeshPeer`, a real WebSocket peer of the mesh.
"""
