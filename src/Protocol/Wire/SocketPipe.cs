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
/// without a system call, and the send loop sends whatever has accumulated since its last send in one call: many
/// small records leave in one segment when they come faster than the socket takes them. Completing either
/// direction (as a channel does when it ends) closes the connection once the bytes already flushed have been
/// sent, as a pipe over a <see cref="NetworkStream"/> that owns its socket did.
/// </remarks>
public sealed class SocketPipe : IDuplexPipe, IAsyncDisposable
{
    /// <summary>
    /// A receive asks for at least this much room, so a maximal channel record (64 KiB and its framing) mostly
    /// arrives in one buffer, decrypted where it lies instead of being joined first. An idle connection holds no
    /// receive buffer at all: it waits for data before renting one.
    /// </summary>
    public const int MinimumReceiveSize = 64 * 1024;

    /// <summary>
    /// Bytes either pipe holds before its writer waits: received bytes the reader has not consumed (then TCP's own
    /// window pushes back on the peer), and flushed bytes the socket has not taken (then the writer's flush waits).
    /// Four maximal channel records: enough to keep the socket busy, small enough to bound memory per connection.
    /// </summary>
    public const int PipeThreshold = 256 * 1024;

    /// <summary>How long <see cref="DisposeAsync"/> waits for flushed bytes to leave before it resets the connection.</summary>
    public static readonly TimeSpan DisposeLinger = TimeSpan.FromSeconds(5);

    private static readonly PipeOptions Options = new(pauseWriterThreshold: PipeThreshold, resumeWriterThreshold: PipeThreshold / 2, useSynchronizationContext: false);

    private readonly Socket _socket;
    private readonly TimeProvider _time;
    private readonly Pipe _received = new(Options);
    private readonly Pipe _toSend = new(Options);
    private readonly Task _receiving;
    private readonly Task _sending;
    private int _closed;
    private volatile bool _inputCompleted;

    /// <summary>Wraps <paramref name="socket"/>, which the pipe then owns.</summary>
    /// <param name="socket">A connected stream socket.</param>
    /// <param name="time">The clock of <see cref="DisposeLinger"/>; the system's by default.</param>
    public SocketPipe(Socket socket, TimeProvider? time = null)
    {
        ArgumentNullException.ThrowIfNull(socket);
        _socket = socket;
        _time = time ?? TimeProvider.System;
        Input = new ClosingReader(_received.Reader, this);
        Output = _toSend.Writer;
        _receiving = ReceiveLoopAsync();
        _sending = SendLoopAsync();
    }

    /// <inheritdoc />
    public PipeReader Input { get; }

    /// <inheritdoc />
    public PipeWriter Output { get; }

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
    /// Completes both directions, lets the bytes already flushed leave (for at most <see cref="DisposeLinger"/>),
    /// and closes the socket.
    /// </summary>
    public async ValueTask DisposeAsync()
    {
        await Output.CompleteAsync().ConfigureAwait(false);
        await Input.CompleteAsync().ConfigureAwait(false);
        try
        {
            await _sending.WaitAsync(DisposeLinger, _time).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            // A peer that reads nothing does not hold the connection open: it is reset below.
        }

        Close();
        await _receiving.ConfigureAwait(false);
        await _sending.ConfigureAwait(false);
    }

    private void Close()
    {
        if (Interlocked.Exchange(ref _closed, 1) == 0)
        {
            // A FIN first, as Kestrel does: disposing a socket with a receive pending closes it abortively on
            // Linux, and the RST would destroy what the peer has not read yet (a channel's last records).
            try
            {
                _socket.Shutdown(SocketShutdown.Both);
            }
            catch (SocketException)
            {
                // Already reset by the peer: nothing left to tell it.
            }

            _socket.Dispose();
        }
    }

    private async Task ReceiveLoopAsync()
    {
        await Task.Yield();
        var writer = _received.Writer;
        Exception? error = null;
        try
        {
            while (true)
            {
                // An idle connection waits for data before it rents a buffer (as Kestrel does): thousands of idle
                // connections then hold no receive memory.
                await _socket.ReceiveAsync(Memory<byte>.Empty, SocketFlags.None).ConfigureAwait(false);
                var memory = writer.GetMemory(MinimumReceiveSize);
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
            error = new IOException($"The connection failed: {e.SocketErrorCode}.", e);
        }
        catch (ObjectDisposedException)
        {
            // Closed by this side: the reader already stopped reading.
        }

        await writer.CompleteAsync(error).ConfigureAwait(false);
    }

    private async Task SendLoopAsync()
    {
        await Task.Yield();
        var reader = _toSend.Reader;
        Exception? error = null;
        try
        {
            while (true)
            {
                var result = await reader.ReadAsync().ConfigureAwait(false);
                var buffer = result.Buffer;
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
                }

                if (result.IsCompleted || _inputCompleted)
                {
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

        // The writer's next flush reports the failure; the bytes it held can no longer be sent.
        await reader.CompleteAsync(error).ConfigureAwait(false);
        Close();
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

    // The input as its consumer sees it: completing it (a channel that ended) closes the connection, as a
    // stream-backed pipe did, but only once the send loop has sent what was flushed before.
    private sealed class ClosingReader(PipeReader inner, SocketPipe owner) : PipeReader
    {
        public override void AdvanceTo(SequencePosition consumed) => inner.AdvanceTo(consumed);

        public override void AdvanceTo(SequencePosition consumed, SequencePosition examined) => inner.AdvanceTo(consumed, examined);

        public override void CancelPendingRead() => inner.CancelPendingRead();

        public override void Complete(Exception? exception = null)
        {
            inner.Complete(exception);
            owner._inputCompleted = true;

            // Wakes the send loop, which sends what it holds and then closes the socket.
            owner._toSend.Reader.CancelPendingRead();
        }

        public override ValueTask<ReadResult> ReadAsync(CancellationToken cancellationToken = default) => inner.ReadAsync(cancellationToken);

        public override bool TryRead(out ReadResult result) => inner.TryRead(out result);
    }
}
