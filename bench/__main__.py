import importlib
import sys

ALL = ["queue", "http_poll", "heartbeat", "jobs", "lateness", "mesh"]


def main(names: list[str]) -> None:
    for name in names or ALL:
        module = importlib.import_module(f"bench.{name}")
        print(f"\n=== {name}: {module.__doc__.strip().splitlines()[0]}", flush=True)
        module.run()


if __name__ == "__main__":
    main(sys.argv[1:])
