using System.Buffers;
using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Time.Testing;
using SecureChannels.Protocol.Wire;

namespace SecureChannels.Protocol.Tests.Wire;

/// <summary>
/// <see cref="SocketPipe"/> over real loopback TCP: bytes arrive whole and in order, completing either direction
/// ends the stream with a FIN after everything flushed before, socket errors surface as <see cref="IOException"/>,
/// and <see cref="SocketPipe.DisposeAsync"/> waits at most <see cref="SocketPipe.DisposeLinger"/> (on the given
/// clock) for flushed bytes to leave.
/// </summary>
/// <remarks>
/// Every wait is bounded by <see cref="Guard"/> (real time) so that a bug fails instead of hanging; the guard is
/// never a timing assumption. Where a test needs the send loop stuck in a send, it shrinks the sockets' buffers
/// (<see cref="SmallSocketBuffer"/>) so that a single flush is far more than the kernel can hold while the peer
/// reads nothing: the send loop then provably holds that flush until the peer reads.
/// </remarks>
public sealed class SocketPipeTests
{
    /// <summary>The safety net for awaits that would hang on a bug (generous: the machine may be busy).</summary>
    private static readonly TimeSpan Guard = TimeSpan.FromSeconds(30);

    /// <summary>
    /// A window in which something must not happen. Only ever used to observe that a task stays pending; never to
    /// wait for something to happen, so a slow machine cannot make a test fail.
    /// </summary>
    private static readonly TimeSpan ObservationWindow = TimeSpan.FromMilliseconds(100);

    /// <summary>
    /// The send buffer of the sending socket and the receive buffer of the receiving one, when a test wants the
    /// kernel to hold little: Linux doubles it, and a connection then holds about 12 KiB in flight.
    /// </summary>
    private const int SmallSocketBuffer = 4096;

    // Around the receive size and the pipe threshold, so that large writes wait on back-pressure.
    private static readonly int[] Sizes =
    [
        0, 1, 7, 300, 1460, 4096, 65535,
        SocketPipe.ReceiveBlockSize, SocketPipe.ReceiveBlockSize + 1, 100_000,
        SocketPipe.PipeThreshold + 4321, (3 * SocketPipe.PipeThreshold) + 17, 2, 12345,
    ];

    public enum Direction
    {
        Output,
        Input,
    }

    public enum Ending
    {
        OutputThenInput,
        InputThenOutput,
        Dispose,
    }

    [Fact]
    public async Task BytesFlushedOnOneEndArriveIntactAndInOrderOnTheOtherBothWaysAtOnce()
    {
        await using var connection = await Connection.OpenAsync();

        // Each reader consumes while its writer writes; writes above the threshold wait for the reader.
        var aToB = ExchangeAsync(connection.A.Output, connection.B.Input);
        var bToA = ExchangeAsync(connection.B.Output, connection.A.Input);
        await Task.WhenAll(aToB, bToA).WaitAsync(Guard);

        // Then A ends: B sees the end right after the last byte, nothing more.
        await connection.A.Output.CompleteAsync();
        var end = await connection.B.Input.ReadAsync().AsTask().WaitAsync(Guard);
        Assert.True(end.IsCompleted);
        Assert.True(end.Buffer.IsEmpty);

        static async Task ExchangeAsync(PipeWriter writer, PipeReader reader)
        {
            var reading = ReadExactlyAsync(reader, Sizes.Sum(size => (long)size));
            var writing = Task.Run(async () =>
            {
                long offset = 0;
                foreach (var size in Sizes)
                {
                    var flushed = await WriteAsync(writer, offset, size);
                    Assert.False(flushed.IsCompleted, "The pipe stopped taking bytes.");
                    offset += size;
                }
            });

            // The first failure is the one reported (the other side would then only time out).
            await await Task.WhenAny(reading, writing);
            await Task.WhenAll(reading, writing);
        }
    }

    [Fact]
    public async Task ManySmallFlushesMadeBeforeThePeerReadsAreAllDeliveredByteExact()
    {
        await using var connection = await Connection.OpenAsync();

        // Flushes come faster than the send loop sends, so it finds several waiting and sends them together.
        long offset = 0;
        for (var i = 0; i < 4000; i++)
        {
            var size = 1 + (i * 37 % 61);
            Assert.False((await WriteAsync(connection.A.Output, offset, size)).IsCompleted);
            offset += size;
        }

        Assert.True(offset < SocketPipe.PipeThreshold, "The flushes are meant to fit without back-pressure.");
        await ReadExactlyAsync(connection.B.Input, offset).WaitAsync(Guard);

        await connection.A.Output.CompleteAsync();
        var end = await connection.B.Input.ReadAsync().AsTask().WaitAsync(Guard);
        Assert.True(end.IsCompleted);
        Assert.True(end.Buffer.IsEmpty);
    }

    [Fact]
    public async Task CompletingOutputEndsTheStreamGracefullyAfterTheLastByteEveryTime()
    {
        // Many connections: the reset of an earlier version (a socket disposed with a receive pending) was a race.
        for (var i = 0; i < 200; i++)
        {
            await using var connection = await Connection.OpenAsync();

            // Half the time the peer is already reading when the end comes, half the time it reads afterwards.
            var reading = i % 2 == 0 ? ReadUntilEndAsync(connection.B.Input) : null;
            long offset = 0;
            foreach (var size in new[] { 1 + i, 5000, SocketPipe.ReceiveBlockSize + 3 })
            {
                await WriteAsync(connection.A.Output, offset, size);
                offset += size;
            }

            await connection.A.Output.CompleteAsync();
            var (received, error) = await (reading ?? ReadUntilEndAsync(connection.B.Input)).WaitAsync(Guard);
            Assert.True(error is null, $"Connection {i}: the peer saw {error?.GetType().Name} ({error?.Message}) after {received} of {offset} bytes instead of a graceful end.");
            Assert.Equal(offset, received);
        }
    }

    [Theory]
    [InlineData(Ending.OutputThenInput)]
    [InlineData(Ending.InputThenOutput)]
    public async Task CompletingBothDirectionsDeliversEverythingFlushedBeforeThenTheEnd(Ending ending)
    {
        for (var i = 0; i < 50; i++)
        {
            await using var connection = await Connection.OpenAsync();
            var reading = ReadUntilEndAsync(connection.B.Input);
            long offset = 0;
            foreach (var size in new[] { 100 + i, SocketPipe.ReceiveBlockSize + 1, 1, 20_000, 3 })
            {
                await WriteAsync(connection.A.Output, offset, size);
                offset += size;
            }

            await EndAsync(connection.A, ending);
            var (received, error) = await reading.WaitAsync(Guard);
            Assert.True(error is null, $"Connection {i}: the peer saw {error?.GetType().Name} ({error?.Message}) after {received} of {offset} bytes instead of a graceful end.");
            Assert.Equal(offset, received);
        }
    }

    [Theory]
    [InlineData(Ending.OutputThenInput)]
    [InlineData(Ending.InputThenOutput)]
    [InlineData(Ending.Dispose)]
    public async Task BytesFlushedWhileTheSendLoopIsBlockedAreSentBeforeTheEnd(Ending ending)
    {
        var (client, server) = await ConnectSocketsAsync(smallBuffers: true);
        using (server)
        {
            // The first flush is far more than the kernel holds while the peer reads nothing: the send loop takes
            // it whole (one flush) and stays inside its send until the peer reads.
            const int First = 200 * 1024;
            const int Second = 50 * 1024;
            Assert.True(First > 4 * (client.SendBufferSize + server.ReceiveBufferSize), "The socket buffers are larger than the test assumes.");
            Assert.True(First + Second < SocketPipe.PipeThreshold, "Both flushes are meant to complete without back-pressure.");
            var pipe = new SocketPipe(client, new FakeTimeProvider());
            try
            {
                await WriteAsync(pipe.Output, 0, First);

                // Bytes reaching the peer show that the send loop holds the first flush.
                await server.ReceiveAsync(Memory<byte>.Empty, SocketFlags.None).AsTask().WaitAsync(Guard);

                // Flushed while the send loop is still sending the first flush, then the end.
                await WriteAsync(pipe.Output, First, Second);
                var disposing = ending == Ending.Dispose ? pipe.DisposeAsync().AsTask() : null;
                if (disposing is null)
                {
                    await EndAsync(pipe, ending);
                }

                var (received, error) = await ReceiveToEndAsync(server).WaitAsync(Guard);
                Assert.True(error is null, $"The peer saw {error} after {received} bytes.");
                Assert.True(received == First + Second, $"The peer saw the end after {received} of {First + Second} flushed bytes.");
                if (disposing is not null)
                {
                    await disposing.WaitAsync(Guard);
                }
            }
            finally
            {
                server.Close();
                await pipe.DisposeAsync().AsTask().WaitAsync(Guard);
            }
        }
    }

    [Fact]
    public async Task CompletingOnlyInputClosesTheConnectionAndLaterFlushesReportIt()
    {
        var time = new FakeTimeProvider();
        await using var connection = await Connection.OpenAsync(time);
        var peer = ReadUntilEndAsync(connection.B.Input);

        // The output stays open for DisposeLinger after the input alone is completed (a channel completes its
        // output next, after its last records); then the connection closes.
        await connection.A.Input.CompleteAsync();
        await AssertStillPendingAsync(peer, "The connection closed before the linger passed.");
        time.Advance(SocketPipe.DisposeLinger);

        // The peer's reader ends (a FIN, or a reset), with nothing received.
        var (received, error) = await peer.WaitAsync(Guard);
        Assert.Equal(0, received);
        Assert.True(error is null or IOException, $"The peer's reader failed with {error?.GetType().Name}, not an IOException.");

        // The side that completed its input cannot send any more: a flush says so instead of waiting forever.
        await FlushUntilRefusedAsync(connection.A.Output).WaitAsync(Guard);
    }

    [Fact]
    public async Task BytesHeldUnreadTakeReceiveMemoryByTheirSizeNotByTheNumberOfReceives()
    {
        var (client, server) = await ConnectSocketsAsync();
        var pool = new CountingPool();
        var pipe = new SocketPipe(client, new FakeTimeProvider(), pool);
        try
        {
            // A peer trickling single bytes to a reader that consumes none: one receive block, not one per receive.
            const int Bytes = 2000;
            for (var i = 0; i < Bytes; i++)
            {
                server.Send([(byte)i]);
            }

            await UntilAsync(() =>
            {
                if (!pipe.Input.TryRead(out var result))
                {
                    return false;
                }

                var held = result.Buffer.Length;
                pipe.Input.AdvanceTo(result.Buffer.Start, result.Buffer.End);
                return held == Bytes;
            });
            Assert.True(pool.Rented <= 2, $"{pool.Rented} receive blocks rented to hold {Bytes} bytes.");
        }
        finally
        {
            server.Close();
            await pipe.DisposeAsync().AsTask().WaitAsync(Guard);
        }
    }

    [Fact]
    public async Task AnOutputCompletedWithAnErrorAbortsTheConnection()
    {
        await using var connection = await Connection.OpenAsync();
        var peer = ReadUntilEndAsync(connection.B.Input);

        await connection.A.Output.CompleteAsync(new InvalidOperationException("The application failed."));

        // The peer learns at once (an abort, not a linger), and disposal neither throws nor hangs.
        var (received, error) = await peer.WaitAsync(Guard);
        Assert.Equal(0, received);
        Assert.True(error is null or IOException, $"The peer's reader failed with {error?.GetType().Name}, not an IOException.");
        await connection.A.DisposeAsync().AsTask().WaitAsync(Guard);
    }

    [Fact]
    public async Task APeerThatResetsTheConnectionFailsTheReaderWithIOException()
    {
        var (client, server) = await ConnectSocketsAsync();
        var pipe = new SocketPipe(client, new FakeTimeProvider());
        try
        {
            var reading = pipe.Input.ReadAsync().AsTask();

            server.LingerState = new LingerOption(true, 0);
            server.Close();

            var error = await Record.ExceptionAsync(() => reading.WaitAsync(Guard));
            if (error is null)
            {
                Assert.True((await reading).IsCompleted);
            }
            else
            {
                // The documented type, with the socket's error kept.
                Assert.IsType<IOException>(error);
                Assert.Equal(SocketError.ConnectionReset, Assert.IsType<SocketException>(error.InnerException).SocketErrorCode);
            }

            // Sending on the reset connection fails too, through a flush, rather than hanging.
            await FlushUntilRefusedAsync(pipe.Output).WaitAsync(Guard);
        }
        finally
        {
            await pipe.DisposeAsync().AsTask().WaitAsync(Guard);
        }
    }

    [Fact]
    public async Task BytesThatArrivedBeforeAResetAreReadBeforeTheIOException()
    {
        for (var i = 0; i < 5; i++)
        {
            var (client, server) = await ConnectSocketsAsync();
            var pipe = new SocketPipe(server, new FakeTimeProvider());
            try
            {
                // On loopback the bytes are in the pipe's socket before the reset that follows them: the kernel
                // hands them over first (as a NetworkStream did), then the error.
                const int Sent = 10_000;
                Assert.Equal(Sent, await client.SendAsync(Bytes(0, Sent).AsMemory(), SocketFlags.None).AsTask().WaitAsync(Guard));
                client.LingerState = new LingerOption(true, 0);
                client.Close();

                // The reader asks only once the receive loop has met the reset and ended: the bytes must still be
                // there for it. (The pipe does not show its loops: the field is read.)
                await pipe.Receiving.WaitAsync(Guard);
                var (received, error) = await ReadUntilEndAsync(pipe.Input).WaitAsync(Guard);
                Assert.True(received == Sent, $"Connection {i}: the reader got {received} of the {Sent} bytes that arrived before the reset, then {error?.Message ?? "the end"}.");
                Assert.IsType<IOException>(error);
            }
            finally
            {
                await pipe.DisposeAsync().AsTask().WaitAsync(Guard);
            }
        }
    }

    [Fact]
    public async Task InputFailsRatherThanEndsWhenASendFailureClosedTheConnection()
    {
        var (client, server) = await ConnectSocketsAsync();
        var pipe = new SocketPipe(server, new FakeTimeProvider());
        try
        {
            // The peer sends more than the pipe holds; the pipe's reader reads nothing yet, so the receive loop
            // waits for it (in its flush, not in a receive) with the rest still in the socket.
            const int Sent = 4 * SocketPipe.PipeThreshold;
            var sending = client.SendAsync(Bytes(0, Sent).AsMemory(), SocketFlags.None).AsTask();
            await UntilAsync(() =>
            {
                if (!pipe.Input.TryRead(out var result))
                {
                    return false;
                }

                pipe.Input.AdvanceTo(result.Buffer.Start);
                return result.Buffer.Length >= SocketPipe.PipeThreshold;
            });

            // The peer resets the connection; this side learns it from a send, which closes the socket.
            client.LingerState = new LingerOption(true, 0);
            client.Close();
            await Record.ExceptionAsync(() => sending.WaitAsync(Guard));
            await FlushUntilRefusedAsync(pipe.Output).WaitAsync(Guard);

            // What the reader gets afterwards is not the whole stream: it must not end as if it were.
            var (received, error) = await ReadUntilEndAsync(pipe.Input).WaitAsync(Guard);
            Assert.True(received < Sent, "Everything sent was received, so nothing was lost to the reset.");
            Assert.True(error is IOException, $"The reader saw a graceful end after {received} of {Sent} bytes on a connection that was reset.");
        }
        finally
        {
            await pipe.DisposeAsync().AsTask().WaitAsync(Guard);
        }
    }

    [Fact]
    public async Task ConnectAsyncReachesAListenerWithNagleOff()
    {
        using var listener = Listen();
        var accepting = listener.AcceptAsync();
        var pipe = await SocketPipe.ConnectAsync((IPEndPoint)listener.LocalEndPoint!, Guard, new FakeTimeProvider()).WaitAsync(Guard);
        try
        {
            using var server = await accepting.WaitAsync(Guard);

            // The pipe does not show its socket: the field is read to check the one option ConnectAsync promises.
            Assert.True(pipe.Socket.NoDelay, "ConnectAsync left Nagle's algorithm on.");

            // Bytes go both ways.
            await WriteAsync(pipe.Output, 0, 5000);
            await ReceiveExactlyAsync(server, 5000).WaitAsync(Guard);
            Assert.Equal(5000, await server.SendAsync(Bytes(0, 5000).AsMemory(), SocketFlags.None).AsTask().WaitAsync(Guard));
            await ReadExactlyAsync(pipe.Input, 5000).WaitAsync(Guard);
        }
        finally
        {
            await pipe.DisposeAsync().AsTask().WaitAsync(Guard);
        }
    }

    [Fact]
    public async Task ConnectAsyncToAPortWithNoListenerThrowsSocketException()
    {
        // A bound socket that never listens holds the port, so nothing else can be listening there.
        using var bound = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        bound.Bind(new IPEndPoint(IPAddress.Loopback, 0));

        var error = await Assert.ThrowsAsync<SocketException>(() => SocketPipe.ConnectAsync((IPEndPoint)bound.LocalEndPoint!, Guard, new FakeTimeProvider()).WaitAsync(Guard));
        Assert.Equal(SocketError.ConnectionRefused, error.SocketErrorCode);
    }

    [Fact]
    public async Task ConnectAsyncThatIsNeverAnsweredFailsWithTimedOutOnTheGivenClock()
    {
        // A listener with a backlog of 0 whose one queued connection is never accepted: Linux drops further SYNs,
        // so the next connection waits unanswered. (Other systems refuse it instead; the test is Linux's.)
        if (!OperatingSystem.IsLinux())
        {
            return;
        }

        using var listener = Listen(backlog: 0);
        using var filler = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await filler.ConnectAsync(listener.LocalEndPoint!).WaitAsync(Guard);

        var time = new FakeTimeProvider();
        var timeout = TimeSpan.FromSeconds(10);
        var connecting = SocketPipe.ConnectAsync((IPEndPoint)listener.LocalEndPoint!, timeout, time);
        time.Advance(timeout - TimeSpan.FromTicks(1));
        await AssertStillPendingAsync(connecting, "The connection was answered, or it timed out before its timeout.");

        time.Advance(TimeSpan.FromTicks(1));
        var error = await Assert.ThrowsAsync<SocketException>(() => connecting.WaitAsync(Guard));
        Assert.Equal(SocketError.TimedOut, error.SocketErrorCode);
    }

    [Fact]
    public async Task DisposeAsyncWaitsForTheLingerThenResetsAPeerThatReadsNothing()
    {
        var (client, server) = await ConnectSocketsAsync(smallBuffers: true);
        using (server)
        {
            // Flushed in one go (no back-pressure), and far more than the kernel holds while the peer reads nothing.
            const int Flushed = 250 * 1024;
            Assert.True(Flushed > 4 * (client.SendBufferSize + server.ReceiveBufferSize), "The socket buffers are larger than the test assumes.");
            var time = new FakeTimeProvider();
            var pipe = new SocketPipe(client, time);
            try
            {
                await WriteAsync(pipe.Output, 0, Flushed);

                // The linger is on the given clock, and nothing else ends the wait: the peer never reads.
                var disposing = pipe.DisposeAsync().AsTask();
                await AssertStillPendingAsync(disposing, "DisposeAsync returned while flushed bytes could not leave.");
                time.Advance(SocketPipe.DisposeLinger - TimeSpan.FromTicks(1));
                await AssertStillPendingAsync(disposing, "DisposeAsync returned before the linger passed.");

                time.Advance(TimeSpan.FromTicks(1));
                await disposing.WaitAsync(Guard);

                // The connection is reset: the peer must not take what it got for the whole stream.
                var (received, error) = await ReceiveToEndAsync(server).WaitAsync(Guard);
                Assert.True(received < Flushed, "Everything flushed was received, so nothing was left to reset.");
                Assert.True(error is SocketError.ConnectionReset, $"After DisposeLinger the peer saw {(error is null ? "a graceful end" : error.ToString())} after {received} of {Flushed} flushed bytes, not a reset.");
            }
            finally
            {
                server.Close();
                await pipe.DisposeAsync().AsTask().WaitAsync(Guard);
            }
        }
    }

    [Theory]
    [InlineData(Direction.Output)]
    [InlineData(Direction.Input)]
    public async Task CompletingADirectionResetsAPeerThatReadsNothingOnceTheLingerPassed(Direction completed)
    {
        var (client, server) = await ConnectSocketsAsync(smallBuffers: true);
        using (server)
        {
            const int Flushed = 250 * 1024;
            Assert.True(Flushed > 4 * (client.SendBufferSize + server.ReceiveBufferSize), "The socket buffers are larger than the test assumes.");
            var time = new FakeTimeProvider();
            var pipe = new SocketPipe(client, time);
            try
            {
                await WriteAsync(pipe.Output, 0, Flushed);

                // With only the output completed, the input shows when the connection closes (the peer sends nothing).
                var closed = completed == Direction.Output ? pipe.Input.ReadAsync().AsTask() : null;
                if (closed is null)
                {
                    await pipe.Input.CompleteAsync();
                }
                else
                {
                    await pipe.Output.CompleteAsync();
                    await AssertStillPendingAsync(closed, "The connection closed while flushed bytes could not leave.");
                    time.Advance(SocketPipe.DisposeLinger - TimeSpan.FromTicks(1));
                    await AssertStillPendingAsync(closed, "The connection closed before the linger passed.");
                    time.Advance(TimeSpan.FromTicks(1));
                }

                time.Advance(SocketPipe.DisposeLinger);
                var (received, error) = await ReceiveToEndAsync(server).WaitAsync(Guard);
                Assert.True(received < Flushed, "Everything flushed was received, so nothing was left to reset.");
                Assert.True(error is SocketError.ConnectionReset, $"After DisposeLinger the peer saw {(error is null ? "a graceful end" : error.ToString())} after {received} of {Flushed} flushed bytes, not a reset.");
                if (closed is not null)
                {
                    var end = await Record.ExceptionAsync(() => closed.WaitAsync(Guard));
                    Assert.True(end is null or IOException, $"The input failed with {end?.GetType().Name}, not an IOException.");
                }
            }
            finally
            {
                server.Close();
                await pipe.DisposeAsync().AsTask().WaitAsync(Guard);
            }
        }
    }

    [Fact]
    public async Task DisposeAsyncOnceEverythingWasSentReturnsWithoutTheLingerAndThePeerSeesTheEnd()
    {
        var time = new FakeTimeProvider();
        await using var connection = await Connection.OpenAsync(time);
        await WriteAsync(connection.A.Output, 0, SocketPipe.ReceiveBlockSize + 100);
        await ReadExactlyAsync(connection.B.Input, SocketPipe.ReceiveBlockSize + 100).WaitAsync(Guard);

        // The fake clock never moves: only the sent bytes let DisposeAsync return.
        await connection.A.DisposeAsync().AsTask().WaitAsync(Guard);

        var end = await connection.B.Input.ReadAsync().AsTask().WaitAsync(Guard);
        Assert.True(end.IsCompleted);
        Assert.True(end.Buffer.IsEmpty);
    }

    // The byte at a position of a stream: no period a chunk size could hide a reordering behind.
    private static byte At(long position) => (byte)(unchecked((ulong)position * 0x9E3779B97F4A7C15UL) >> 56);

    private static byte[] Bytes(long offset, int size)
    {
        var bytes = new byte[size];
        for (var i = 0; i < size; i++)
        {
            bytes[i] = At(offset + i);
        }

        return bytes;
    }

    private static void Verify(ReadOnlySpan<byte> received, long offset)
    {
        for (var i = 0; i < received.Length; i++)
        {
            if (received[i] != At(offset + i))
            {
                Assert.Fail($"Byte {offset + i} of the stream arrived as {received[i]}, not {At(offset + i)}.");
            }
        }
    }

    private static async Task<FlushResult> WriteAsync(PipeWriter writer, long offset, int size)
    {
        writer.Write(Bytes(offset, size));
        return await writer.FlushAsync().AsTask().WaitAsync(Guard);
    }

    /// <summary>Reads exactly <paramref name="count"/> bytes of the stream and checks them.</summary>
    private static async Task ReadExactlyAsync(PipeReader reader, long count)
    {
        long offset = 0;
        while (offset < count)
        {
            var result = await reader.ReadAsync().AsTask().WaitAsync(Guard);
            var buffer = result.Buffer.Slice(0, Math.Min(result.Buffer.Length, count - offset));
            foreach (var segment in buffer)
            {
                Verify(segment.Span, offset);
                offset += segment.Length;
            }

            reader.AdvanceTo(buffer.End);
            if (offset < count && result.IsCompleted)
            {
                Assert.Fail($"The stream ended after {offset} of {count} bytes.");
            }
        }
    }

    /// <summary>Reads and checks the stream to its end: how many bytes came, and the reader's error if it failed.</summary>
    private static async Task<(long Received, Exception? Error)> ReadUntilEndAsync(PipeReader reader)
    {
        long offset = 0;
        try
        {
            while (true)
            {
                var result = await reader.ReadAsync().AsTask().WaitAsync(Guard);
                foreach (var segment in result.Buffer)
                {
                    Verify(segment.Span, offset);
                    offset += segment.Length;
                }

                reader.AdvanceTo(result.Buffer.End);
                if (result.IsCompleted)
                {
                    return (offset, null);
                }
            }
        }
        catch (IOException e)
        {
            return (offset, e);
        }
    }

    private static async Task ReceiveExactlyAsync(Socket socket, int count)
    {
        var buffer = new byte[count];
        var received = 0;
        while (received < count)
        {
            var n = await socket.ReceiveAsync(buffer.AsMemory(received), SocketFlags.None).AsTask().WaitAsync(Guard);
            Assert.True(n > 0, $"The stream ended after {received} of {count} bytes.");
            received += n;
        }

        Verify(buffer, 0);
    }

    /// <summary>Receives and checks the stream to its end: how many bytes came, and the socket's error if it failed.</summary>
    private static async Task<(long Received, SocketError? Error)> ReceiveToEndAsync(Socket socket)
    {
        var buffer = new byte[64 * 1024];
        long offset = 0;
        try
        {
            while (true)
            {
                var n = await socket.ReceiveAsync(buffer.AsMemory(), SocketFlags.None).AsTask().WaitAsync(Guard);
                if (n == 0)
                {
                    return (offset, null);
                }

                Verify(buffer.AsSpan(0, n), offset);
                offset += n;
            }
        }
        catch (SocketException e)
        {
            return (offset, e.SocketErrorCode);
        }
    }

    /// <summary>Writes and flushes until a flush reports the pipe completed or fails with an <see cref="IOException"/>.</summary>
    private static async Task FlushUntilRefusedAsync(PipeWriter writer)
    {
        // Bounded: once the send loop stops, a flush says so at the latest when back-pressure would make it wait.
        for (var i = 0; i < 10_000; i++)
        {
            writer.Write(new byte[1024]);
            try
            {
                if ((await writer.FlushAsync().AsTask().WaitAsync(Guard)).IsCompleted)
                {
                    return;
                }
            }
            catch (IOException)
            {
                return;
            }
        }

        Assert.Fail("Flushes kept succeeding on a closed connection.");
    }

    private static async Task EndAsync(SocketPipe pipe, Ending ending)
    {
        switch (ending)
        {
            case Ending.OutputThenInput:
                await pipe.Output.CompleteAsync();
                await pipe.Input.CompleteAsync();
                break;
            case Ending.InputThenOutput:
                await pipe.Input.CompleteAsync();
                await pipe.Output.CompleteAsync();
                break;
            default:
                await pipe.DisposeAsync().AsTask().WaitAsync(Guard);
                break;
        }
    }

    private static async Task AssertStillPendingAsync(Task task, string because)
    {
        await Task.WhenAny(task, Task.Delay(ObservationWindow));
        Assert.False(task.IsCompleted, because);
    }

    /// <summary>Yields until <paramref name="condition"/> holds; <see cref="Guard"/> (real time) is only a safety net.</summary>
    private static async Task UntilAsync(Func<bool> condition)
    {
        var started = System.Diagnostics.Stopwatch.StartNew();
        while (!condition())
        {
            if (started.Elapsed > Guard)
            {
                throw new TimeoutException("The condition did not become true.");
            }

            await Task.Yield();
        }
    }

    private static Socket Listen(int backlog = 16, int? receiveBuffer = null)
    {
        var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            if (receiveBuffer is { } size)
            {
                // Inherited by accepted sockets, and so the window they announce.
                listener.ReceiveBufferSize = size;
            }

            listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
            listener.Listen(backlog);
            return listener;
        }
        catch
        {
            listener.Dispose();
            throw;
        }
    }

    /// <summary>A connected pair of loopback sockets, Nagle off; with small buffers, the client sends and the server receives little at a time.</summary>
    private static async Task<(Socket Client, Socket Server)> ConnectSocketsAsync(bool smallBuffers = false)
    {
        using var listener = Listen(receiveBuffer: smallBuffers ? SmallSocketBuffer : null);
        var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            if (smallBuffers)
            {
                client.SendBufferSize = SmallSocketBuffer;
            }

            var accepting = listener.AcceptAsync();
            await client.ConnectAsync(listener.LocalEndPoint!).WaitAsync(Guard);
            var server = await accepting.WaitAsync(Guard);
            server.NoDelay = true;
            return (client, server);
        }
        catch
        {
            client.Dispose();
            throw;
        }
    }

    /// <summary>Two <see cref="SocketPipe"/>s, the ends of one loopback connection.</summary>
    private sealed class Connection(SocketPipe a, SocketPipe b) : IAsyncDisposable
    {
        public SocketPipe A { get; } = a;

        public SocketPipe B { get; } = b;

        public static async Task<Connection> OpenAsync(TimeProvider? time = null)
        {
            time ??= new FakeTimeProvider();
            var (client, server) = await ConnectSocketsAsync();
            return new Connection(new SocketPipe(client, time), new SocketPipe(server, time));
        }

        public async ValueTask DisposeAsync()
        {
            try
            {
                await B.DisposeAsync().AsTask().WaitAsync(Guard);
            }
            finally
            {
                await A.DisposeAsync().AsTask().WaitAsync(Guard);
            }
        }
    }

    private sealed class CountingPool : MemoryPool<byte>
    {
        private int _rented;

        public int Rented => Volatile.Read(ref _rented);

        public override int MaxBufferSize => Shared.MaxBufferSize;

        public override IMemoryOwner<byte> Rent(int minBufferSize = -1)
        {
            Interlocked.Increment(ref _rented);
            return Shared.Rent(minBufferSize);
        }

        protected override void Dispose(bool disposing)
        {
        }
    }
}
