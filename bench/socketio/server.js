// A Socket.IO 4 server with the same behaviour the load generator drives on
// tokenim: clients join a room ("subscribe"), publishers emit to it
// ("publish"), and every member receives the message ("message"). WebSocket
// transport only, no per-message compression: the same work tokenim does.
//
//   node bench/socketio/server.js 127.0.0.1 18090
import { createServer } from "node:http";
import { Server } from "socket.io";

const [host = "127.0.0.1", port = "18090"] = process.argv.slice(2);
const http = createServer((req, res) => {
  if (req.url === "/healthz") {
    res.writeHead(200).end("ok");
    return;
  }
  res.writeHead(404).end();
});
const io = new Server(http, {
  transports: ["websocket"],
  perMessageDeflate: false,
  maxHttpBufferSize: 64 * 1024,
  pingInterval: 25000,
  pingTimeout: 20000,
  serveClient: false,
});

io.on("connection", (socket) => {
  socket.on("subscribe", (room, ack) => {
    socket.join(room);
    if (typeof ack === "function") ack({ ok: true });
  });
  socket.on("publish", (room, data, ack) => {
    io.to(room).emit("message", room, data);
    if (typeof ack === "function") ack({ ok: true });
  });
});

http.listen(Number(port), host, () => {
  console.log(`socket.io listening on ${host}:${port}`);
});
for (const signal of ["SIGINT", "SIGTERM"]) {
  process.on(signal, () => {
    io.close();
    process.exit(0);
  });
}
