using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;

namespace SecureChannels.Protocol.Wire;

/// <summary>
/// A connected TCP socket as an <see cref="IDuplexPipe"/>: what every dialer (a relay's peer links, a relay's
/// subscription to its authority, an agent's hop to a relay) runs its secure channel over.
/// </summary>
public sealed class SocketPipe : IDuplexPipe, IAsyncDisposable
{
    private readonly NetworkStream _stream;

    /// <summary>Wraps <paramref name="socket"/>, which the pipe then owns.</summary>
    public SocketPipe(Socket socket)
    {
        _stream = new NetworkStream(socket, ownsSocket: true);
        Input = PipeReader.Create(_stream);
        Output = PipeWriter.Create(_stream);
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

            return new SocketPipe(socket);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    /// <summary>Completes both directions and closes the socket.</summary>
    public async ValueTask DisposeAsync()
    {
        await Input.CompleteAsync().ConfigureAwait(false);
        await Output.CompleteAsync().ConfigureAwait(false);
        await _stream.DisposeAsync().ConfigureAwait(false);
    }
}
