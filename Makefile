.PHONY: run test lint format emulator

# Set everything up and start the console on the emulator with demo data (prints the accounts).
run:
	scripts/run.sh

# Set up and run the test suite.
test:
	scripts/test.sh

lint:
	scripts/bootstrap.sh
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/lint-imports --no-logo

format:
	.venv/bin/ruff check --fix .
	.venv/bin/ruff format .

emulator:
	scripts/bootstrap.sh
	.venv/bin/python manage.py composio_emulator --port 9900
