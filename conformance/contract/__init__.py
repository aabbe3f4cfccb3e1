"""The contract as data, layer 0: the requirement catalogue, the two profiles, the schemas (shipped as
`conformance.schemas`) and the rules a request must follow to be valid. Nothing here imports any other
part of the suite."""
