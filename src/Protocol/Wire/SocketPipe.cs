using System.Buffers;
using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using System.Runtime.CompilerServices;

namespace SecureChannels.Protocol.Wire;

/// <summary>
/// A connected TCP socket as an <see cref="IDuplexPipe"/>: what every dialer (a relay's peer links, a relay's
/// subscription to its authority, an agent's hop to a relay) runs its secure channel over.
/// </summary>
/// <remarks>
/// Built as Kestrel's socket transport is: a receive loop fills <see cref="Input"/> and a send loop drains
/// <see cref="Output"/>, each through a <see cref="Pipe"/>. A writer's flush therefore hands its bytes over
/// without a system call, and the send loop sends whatever has accumulated since its last send, one call per
/// buffer segment: many small records leave in one call when they come faster than the socket takes them.
/// Completing <see cref="Output"/> (as a channel does when it ends) closes the connection gracefully once the bytes
/// flushed before have been sent. Completing either direction, or disposing, starts <see cref="DisposeLinger"/>: a
/// connection still sending when it passes (a peer that reads nothing) is reset instead, so the peer never takes a
/// cut stream for a whole one; one whose consumer completed only the input is then closed gracefully.
/// </remarks>
public sealed class SocketPipe : IDuplexPipe, IAsyncDisposable
{
    /// <summary>
    /// The receive buffers' block size: a maximal channel record (65,537 bytes with its length prefix) mostly arrives
    /// in one block and is decrypted where it lies instead of being joined first. A block is filled to within
    /// <see cref="MinimumReceiveRoom"/> before the next is rented, so memory follows the bytes held, not the number
    /// of receives (a peer trickling one byte at a time fills one block, not one per byte). An idle connection holds
    /// no receive buffer at all: it waits for data before renting one.
    /// </summary>
    public const int ReceiveBlockSize = 128 * 1024;

    /// <summary>The least room a receive is given: below it, the rest of a block is left and a new one rented.</summary>
    public const int MinimumReceiveRoom = 4096;

    /// <summary>
    /// Bytes either pipe holds before its writer waits: received bytes the reader has not consumed (then TCP's own
    /// window pushes back on the peer), and flushed bytes the socket has not taken (then the writer's flush waits).
    /// Four maximal channel records: enough to keep the socket busy, small enough to bound memory per connection.
    /// </summary>
    public const int PipeThreshold = 256 * 1024;

    /// <summary>
    /// How long a completed or disposed pipe may go on sending what was flushed before the connection is reset: as
    /// long as a channel's own disposal linger.
    /// </summary>
    public static readonly TimeSpan DisposeLinger = TimeSpan.FromSeconds(5);

    private static readonly PipeOptions ReceiveOptions = new(pauseWriterThreshold: PipeThreshold, resumeWriterThreshold: PipeThreshold / 2, minimumSegmentSize: ReceiveBlockSize, useSynchronizationContext: false);
    private static readonly PipeOptions SendOptions = new(pauseWriterThreshold: PipeThreshold, resumeWriterThreshold: PipeThreshold / 2, useSynchronizationContext: false);

    private readonly Socket _socket;
    private readonly TimeProvider _time;
    private readonly Pipe _received;
    private readonly Pipe _toSend = new(SendOptions);
    private readonly Task _receiving;
    private readonly Task _sending;
    private int _closed;
    private int _lingering;
    private readonly Lock _sendGate = new();
    private bool _sendBusy;
    private bool _lingerExpired;
    private volatile Exception? _receiveError;
    private volatile Exception? _sendError;

    /// <summary>Wraps <paramref name="socket"/>, which the pipe then owns.</summary>
    /// <param name="socket">A connected stream socket.</param>
    /// <param name="time">The clock of <see cref="DisposeLinger"/>; the system's by default.</param>
    public SocketPipe(Socket socket, TimeProvider? time = null)
        : this(socket, time, receivePool: null)
    {
    }

    /// <summary>As the public constructor, with the receive buffers from <paramref name="receivePool"/> (tests count them).</summary>
    internal SocketPipe(Socket socket, TimeProvider? time, MemoryPool<byte>? receivePool)
    {
        ArgumentNullException.ThrowIfNull(socket);
        _received = new Pipe(receivePool is null
            ? ReceiveOptions
            : new PipeOptions(receivePool, pauseWriterThreshold: PipeThreshold, resumeWriterThreshold: PipeThreshold / 2, minimumSegmentSize: ReceiveBlockSize, useSynchronizationContext: false));
        _socket = socket;
        _time = time ?? TimeProvider.System;
        Input = new ClosingReader(_received.Reader, this);
        Output = new ClosingWriter(_toSend.Writer, this);
        _receiving = ReceiveLoopAsync();
        _sending = SendLoopAsync();
    }

    /// <inheritdoc />
    public PipeReader Input { get; }

    /// <inheritdoc />
    public PipeWriter Output { get; }

    /// <summary>The socket, for tests that check its options.</summary>
    internal Socket Socket => _socket;

    /// <summary>The receive loop, for tests that must know it has ended.</summary>
    internal Task Receiving => _receiving;

    /// <summary>Connects to <paramref name="endpoint"/> within <paramref name="timeout"/> (on <paramref name="time"/>'s clock), Nagle off.</summary>
    /// <exception cref="SocketException">The connection was refused or failed, or the timeout passed (<see cref="SocketError.TimedOut"/>).</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled.</exception>
    public static async Task<SocketPipe> ConnectAsync(IPEndPoint endpoint, TimeSpan timeout, TimeProvider time, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(endpoint);
        var socket = new Socket(endpoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            using var deadline = new CancellationTokenSource(timeout, time);
            using var linked = CancellationTokenSource.CreateLinkedTokenSource(deadline.Token, cancellationToken);
            try
            {
                await socket.ConnectAsync(endpoint, linked.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (deadline.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
            {
                // A peer that never answers is a failed connection, as the operating system reports it, not a
                // cancellation: callers that retry failed connections must retry this one too.
                throw new SocketException((int)SocketError.TimedOut);
            }

            return new SocketPipe(socket, time);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Completes both directions, lets the bytes already flushed leave (the connection is reset after
    /// <see cref="DisposeLinger"/> without progress), and closes the socket.
    /// </summary>
    public async ValueTask DisposeAsync()
    {
        await Output.CompleteAsync().ConfigureAwait(false);
        await Input.CompleteAsync().ConfigureAwait(false);
        await LingerAsync().ConfigureAwait(false);
        await _receiving.ConfigureAwait(false);
    }

    private void StartLinger()
    {
        if (Interlocked.Exchange(ref _lingering, 1) == 0)
        {
            _ = LingerAsync();
        }
    }

    // The send loop ends once the output is completed and drained, or fails. If it has not within DisposeLinger, a
    // send still in progress (a peer that reads nothing) is cut short with a reset, and a send loop idle with
    // nothing to send (the consumer completed only the input) is closed gracefully. Never throws: it also runs
    // unobserved. A fixed linger, like the channel's own: a link too slow to drain the pipe's 256 KiB in 5 s loses
    // the tail (and the peer sees a reset, never a cut stream taken for whole).
    private async Task LingerAsync()
    {
        try
        {
            await _sending.WaitAsync(DisposeLinger, _time).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            bool sending;
            lock (_sendGate)
            {
                _lingerExpired = true;
                sending = _sendBusy;
            }

            // A send in progress cannot be asked: it is cut with a reset. Otherwise the send loop decides at its
            // next wake (graceful only if nothing flushed is left).
            if (sending)
            {
                Close(graceful: false);
            }

            _toSend.Reader.CancelPendingRead();
            await _sending.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }
    }

    private void Close(bool graceful)
    {
        if (Interlocked.Exchange(ref _closed, 1) != 0)
        {
            return;
        }

        try
        {
            if (graceful)
            {
                // A FIN first, as Kestrel does: disposing a socket with a receive pending closes it abortively on
                // Linux, and the RST would destroy what the peer has not read yet (a channel's last records).
                _socket.Shutdown(SocketShutdown.Both);
            }
            else
            {
                // An RST: bytes were left unsent, and the peer must not take the end for a whole stream.
                _socket.LingerState = new LingerOption(enable: true, seconds: 0);
            }
        }
        catch (SocketException)
        {
            // Already reset by the peer: nothing left to tell it.
        }

        _socket.Dispose();
    }

    // Both loops start inline in the constructor and return to it at their first wait (no data yet, nothing to
    // send): no thread-pool hand-off per connection just to start them.
    private async Task ReceiveLoopAsync()
    {
        var writer = _received.Writer;
        Exception? error = null;
        try
        {
            while (true)
            {
                // An idle connection waits for data before it takes a buffer (as Kestrel does).
                await _socket.ReceiveAsync(Memory<byte>.Empty, SocketFlags.None).ConfigureAwait(false);
                var memory = writer.GetMemory(MinimumReceiveRoom);
                var received = await _socket.ReceiveAsync(memory, SocketFlags.None).ConfigureAwait(false);
                if (received == 0)
                {
                    break;
                }

                writer.Advance(received);
                var flushed = await writer.FlushAsync().ConfigureAwait(false);
                if (flushed.IsCompleted)
                {
                    break;
                }
            }
        }
        catch (SocketException e)
        {
            // As NetworkStream reports it, so readers handle one exception type for a broken connection.
            error = _sendError ?? new IOException($"The connection failed: {e.SocketErrorCode}.", e);
        }
        catch (ObjectDisposedException)
        {
            // Closed by this side: after a failed send the input fails too; otherwise the reader stopped reading.
            error = _sendError;
        }

        // Not the pipe's own error completion: a Pipe throws it at the next read even with bytes still unread,
        // and the bytes that arrived before a reset (a peer's last records) must be read first (see ClosingReader).
        _receiveError = error;
        await writer.CompleteAsync().ConfigureAwait(false);
    }

    private async Task SendLoopAsync()
    {
        var reader = _toSend.Reader;
        Exception? error = null;
        var graceful = false;
        try
        {
            while (true)
            {
                var result = await reader.ReadAsync().ConfigureAwait(false);
                var buffer = result.Buffer;
                lock (_sendGate)
                {
                    if (_lingerExpired)
                    {
                        // The linger passed while this loop waited: what is still here was never sent.
                        reader.AdvanceTo(buffer.Start);
                        graceful = buffer.IsEmpty;
                        break;
                    }

                    _sendBusy = true;
                }

                try
                {
                    foreach (var segment in buffer)
                    {
                        await SendAllAsync(segment).ConfigureAwait(false);
                    }
                }
                finally
                {
                    reader.AdvanceTo(buffer.End);
                    lock (_sendGate)
                    {
                        _sendBusy = false;
                    }
                }

                if (result.IsCompleted)
                {
                    graceful = true;
                    break;
                }
            }
        }
        catch (SocketException e)
        {
            error = new IOException($"The connection failed: {e.SocketErrorCode}.", e);
        }
        catch (ObjectDisposedException)
        {
            error = new IOException("The connection was closed.");
        }
        catch (Exception e)
        {
            // The consumer completed the output with an error of its own: an abort, as NetworkStream's disposal was.
            error = new IOException("The connection was aborted by its owner.", e);
        }

        _sendError = error;

        // The writer's next flush reports a failure; the bytes it held can no longer be sent.
        await reader.CompleteAsync(error).ConfigureAwait(false);
        Close(graceful);
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask SendAllAsync(ReadOnlyMemory<byte> segment)
    {
        while (!segment.IsEmpty)
        {
            var sent = await _socket.SendAsync(segment, SocketFlags.None).ConfigureAwait(false);
            segment = segment[sent..];
        }
    }

    // The input as its consumer sees it: completing it starts the linger, and after a failed connection the bytes
    // that arrived before the failure are read before it.
    private sealed class ClosingReader(PipeReader inner, SocketPipe owner) : PipeReader
    {
        private long _lastLength = -1;

        public override void AdvanceTo(SequencePosition consumed) => inner.AdvanceTo(consumed);

        public override void AdvanceTo(SequencePosition consumed, SequencePosition examined) => inner.AdvanceTo(consumed, examined);

        public override void CancelPendingRead() => inner.CancelPendingRead();

        public override void Complete(Exception? exception = null)
        {
            inner.Complete(exception);
            owner.StartLinger();
        }

        public override ValueTask<ReadResult> ReadAsync(CancellationToken cancellationToken = default)
        {
            var read = inner.ReadAsync(cancellationToken);
            return read.IsCompletedSuccessfully ? new ValueTask<ReadResult>(Check(read.Result)) : CheckAsync(read);
        }

        public override bool TryRead(out ReadResult result)
        {
            if (!inner.TryRead(out result))
            {
                return false;
            }

            result = Check(result);
            return true;
        }

        [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
        private async ValueTask<ReadResult> CheckAsync(ValueTask<ReadResult> read) => Check(await read.ConfigureAwait(false));

        // After a failed connection, the bytes that arrived before the failure are read first (as from a
        // NetworkStream); the failure is thrown once the reader asks again without having consumed anything.
        private ReadResult Check(ReadResult result)
        {
            if (!result.IsCompleted || owner._receiveError is not { } error)
            {
                return result;
            }

            var length = result.Buffer.Length;
            if (length == 0 || length == _lastLength)
            {
                throw error;
            }

            _lastLength = length;
            return new ReadResult(result.Buffer, result.IsCanceled, isCompleted: false);
        }
    }

    // The output as its consumer sees it: completing it starts the linger.
    private sealed class ClosingWriter(PipeWriter inner, SocketPipe owner) : PipeWriter
    {
        public override bool CanGetUnflushedBytes => inner.CanGetUnflushedBytes;

        public override long UnflushedBytes => inner.UnflushedBytes;

        public override void Advance(int bytes) => inner.Advance(bytes);

        public override void CancelPendingFlush() => inner.CancelPendingFlush();

        public override void Complete(Exception? exception = null)
        {
            inner.Complete(exception);
            owner.StartLinger();
        }

        public override ValueTask<FlushResult> FlushAsync(CancellationToken cancellationToken = default) => inner.FlushAsync(cancellationToken);

        public override Memory<byte> GetMemory(int sizeHint = 0) => inner.GetMemory(sizeHint);

        public override Span<byte> GetSpan(int sizeHint = 0) => inner.GetSpan(sizeHint);
    }
}
