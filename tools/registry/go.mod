// A loopback OCI registry for the local stack: go-containerregistry's pkg/registry behind a
// tiny main (main.go), built by scripts/build-registry.sh. Ollama pushes and pulls models here.
module coachops.dev/tools/registry

go 1.26.0

require github.com/google/go-containerregistry v0.22.1
