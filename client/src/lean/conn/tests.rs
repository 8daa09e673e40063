//! [`Conn`] against a scripted server on a loopback socket: split and
//! coalesced frames, fragments, a frame larger than the buffer, pings
//! answered with masked pongs, close codes.

use std::time::Duration;

use tokenim_protocol::Codec;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::{Frame, FrameHeader};

use super::{Conn, ConnError};

fn frame(opcode: OpCode, fin: bool, payload: &[u8]) -> Vec<u8> {
    bytes(Frame::message(payload.to_vec(), opcode, fin))
}

fn bytes(frame: Frame) -> Vec<u8> {
    let mut out = Vec::new();
    frame.format(&mut out).unwrap();
    out
}

fn close(code: u16) -> Vec<u8> {
    bytes(Frame::close(Some(CloseFrame {
        code: code.into(),
        reason: "bye".into(),
    })))
}

const TEXT: OpCode = OpCode::Data(Data::Text);

async fn pair(buffer: usize) -> (Conn, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap())
        .await
        .unwrap();
    let (server, _) = listener.accept().await.unwrap();
    (
        Conn::new(
            tokio_util::either::Either::Left(client),
            Codec::Json,
            buffer,
            b"",
        ),
        server,
    )
}

/// Reads one client frame from the server side and unmasks it.
async fn client_frame(server: &mut TcpStream) -> (u8, Vec<u8>) {
    let mut head = vec![0u8; 2];
    server.read_exact(&mut head).await.unwrap();
    let extra = match head[1] & 0x7f {
        126 => 2,
        127 => 8,
        _ => 0,
    };
    let mut rest = vec![0u8; extra + 4];
    server.read_exact(&mut rest).await.unwrap();
    head.extend_from_slice(&rest);
    let mut cursor = std::io::Cursor::new(head.as_slice());
    let (header, len): (FrameHeader, u64) = FrameHeader::parse(&mut cursor).unwrap().unwrap();
    let mask = header.mask.expect("client frames are masked");
    let mut body = vec![0u8; len as usize];
    server.read_exact(&mut body).await.unwrap();
    body.iter_mut()
        .enumerate()
        .for_each(|(i, b)| *b ^= mask[i % 4]);
    (head[0] & 0x0f, body)
}

#[tokio::test]
async fn split_coalesced_and_fragmented_messages_arrive_whole() {
    let (mut conn, mut server) = pair(256).await;
    let mut wire = Vec::new();
    wire.extend(frame(TEXT, true, b"one"));
    wire.extend(frame(TEXT, true, &[b'x'; 300]));
    wire.extend(frame(TEXT, false, b"fr"));
    wire.extend(bytes(Frame::ping(b"pp".to_vec())));
    wire.extend(frame(OpCode::Data(Data::Continue), false, b"ag"));
    wire.extend(frame(OpCode::Data(Data::Continue), true, b"ment"));
    wire.extend(frame(TEXT, true, &vec![b'y'; 70_000]));
    wire.extend(frame(TEXT, true, b"last"));
    let writer = tokio::spawn(async move {
        for chunk in wire.chunks(7) {
            server.write_all(chunk).await.unwrap();
            tokio::task::yield_now().await;
        }
        server
    });
    let mut got: Vec<Vec<u8>> = Vec::new();
    while got.len() < 5 {
        conn.read_some(|m| got.push(m.to_vec())).await.unwrap();
    }
    assert_eq!(got[0], b"one");
    assert_eq!(got[1], vec![b'x'; 300]);
    assert_eq!(got[2], b"fragment");
    assert_eq!(got[3].len(), 70_000);
    assert_eq!(got[4], b"last");
    assert_eq!(conn.pings(), 1);
    let mut server = writer.await.unwrap();
    assert_eq!(client_frame(&mut server).await, (0xA, b"pp".to_vec()));

    conn.send(b"{\"id\":1}").await.unwrap();
    assert_eq!(
        client_frame(&mut server).await,
        (0x1, b"{\"id\":1}".to_vec())
    );

    server.write_all(&close(4001)).await.unwrap();
    let end = conn.recv().await.unwrap_err();
    assert!(matches!(end, ConnError::Closed(Some(4001))), "{end:?}");
    assert_eq!(
        client_frame(&mut server).await,
        (0x8, 4001u16.to_be_bytes().to_vec())
    );
}

#[tokio::test]
async fn end_of_stream_and_masked_frames_end_the_connection() {
    let (mut conn, server) = pair(1024).await;
    drop(server);
    assert!(matches!(conn.recv().await, Err(ConnError::Closed(None))));

    let (mut conn, mut server) = pair(1024).await;
    server
        .write_all(&[0x81, 0x81, 1, 2, 3, 4, 5])
        .await
        .unwrap();
    assert!(matches!(conn.recv().await, Err(ConnError::Protocol(_))));

    let (conn, mut server) = pair(1024).await;
    let closing = tokio::spawn(conn.close(Duration::from_secs(2)));
    assert_eq!(
        client_frame(&mut server).await,
        (0x8, 1000u16.to_be_bytes().to_vec())
    );
    server.write_all(&close(1000)).await.unwrap();
    tokio::time::timeout(Duration::from_secs(1), closing)
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn text_heartbeat_pings_are_answered_and_not_handed_on() {
    let (mut conn, mut server) = pair(256).await;
    conn.set_text_heartbeat(b"2", b"3");
    let mut wire = frame(TEXT, true, b"2");
    wire.extend(frame(TEXT, true, b"42[\"message\",\"r\",{\"seq\":1}]"));
    server.write_all(&wire).await.unwrap();
    let mut got = Vec::new();
    let n = conn.read_some(|m| got.push(m.to_vec())).await.unwrap();
    assert_eq!(n, 1);
    assert_eq!(got, [b"42[\"message\",\"r\",{\"seq\":1}]".to_vec()]);
    assert_eq!(conn.pings(), 1);
    assert_eq!(client_frame(&mut server).await, (0x1, b"3".to_vec()));
}
