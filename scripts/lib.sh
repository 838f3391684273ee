# Shell helpers shared by the project's scripts; sourced, never run.

# A TCP port on loopback that is free right now.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}
