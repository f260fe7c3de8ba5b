"""hold_port.py PORTFILE: listens on 127.0.0.1 (ephemeral port), writes the port to PORTFILE, sleeps."""

import os
import socket
import sys
import time

sock = socket.socket()
sock.bind(("127.0.0.1", 0))
sock.listen()
with open(sys.argv[1] + ".tmp", "w") as f:
    f.write(str(sock.getsockname()[1]))
os.replace(sys.argv[1] + ".tmp", sys.argv[1])
print("ready", flush=True)
while True:
    time.sleep(3600)
