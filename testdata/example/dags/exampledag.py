"""An example DAG: prints the day's astronauts in space."""

from datetime import datetime

from airflow.decorators import dag, task


@dag(start_date=datetime(2025, 1, 1), schedule="@daily", catchup=False, tags=["example"])
def example_astronauts():
    @task
    def get_astronauts() -> list[dict]:
        return [{"name": "Ada", "craft": "ISS"}, {"name": "Grace", "craft": "ISS"}]

    @task
    def print_astronaut_craft(person: dict) -> None:
        print(f"{person['name']} is on the {person['craft']}")

    print_astronaut_craft.expand(person=get_astronauts())


example_astronauts()
