"""The resilience suites: the receive and send paths under AWS faults (local/aws_faults.py and botocore
hooks on the handlers' own clients) and provider faults (the simulator's, local/simulator/provider_faults.py),
each audited for nothing lost, nothing doubled, nothing sent twice."""
