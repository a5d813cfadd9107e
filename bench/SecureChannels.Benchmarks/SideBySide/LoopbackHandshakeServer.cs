using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace SecureChannels.Benchmarks.SideBySide;

/// <summary>
/// Complete handshakes over loopback TCP, both sides in this process: a listener with <c>loops</c> accept loops, each
/// serving one connection at a time (accept, server-side handshake, disposal), and as many client loops (connect,
/// client-side handshake, disposal). A run of N handshakes ends when the clients made N and the server finished N.
/// </summary>
internal sealed class LoopbackHandshakeServer : IAsyncDisposable
{
    private readonly Socket _listener = LoopbackTcp.Listen();
    private readonly IPEndPoint _endpoint;
    private readonly int _loops;
    private readonly Func<Socket, Task> _serve;
    private readonly Func<IPEndPoint, Task> _connect;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task[] _accepting;
    private TaskCompletionSource _served = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private long _toServe;

    /// <param name="loops">Accept loops, and client loops: the handshakes in flight at once.</param>
    /// <param name="serve">The server's side of one connection, which it must dispose (the socket comes with Nagle off).</param>
    /// <param name="connect">The client's side of one connection: connect, handshake, dispose; it throws if the handshake is not what it should be.</param>
    public LoopbackHandshakeServer(int loops, Func<Socket, Task> serve, Func<IPEndPoint, Task> connect)
    {
        _endpoint = (IPEndPoint)_listener.LocalEndPoint!;
        (_loops, _serve, _connect) = (loops, serve, connect);
        _accepting = [.. Enumerable.Range(0, loops).Select(_ => Task.Run(AcceptLoopAsync))];
    }

    /// <summary>Runs <paramref name="count"/> complete handshakes and returns how long they took.</summary>
    public async Task<TimeSpan> RunAsync(long count)
    {
        // No connection is in flight between runs: the previous run waited for the server to finish all of its own.
        var served = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        Volatile.Write(ref _served, served);
        Interlocked.Exchange(ref _toServe, count);
        var toConnect = count;
        var started = Stopwatch.GetTimestamp();
        var clients = Enumerable.Range(0, _loops).Select(_ => Task.Run(async () =>
        {
            while (Interlocked.Decrement(ref toConnect) >= 0)
            {
                await _connect(_endpoint).ConfigureAwait(false);
            }
        }));
        await Task.WhenAll(clients).WaitAsync(RelayPeers.Guard).ConfigureAwait(false);
        await served.Task.WaitAsync(RelayPeers.Guard).ConfigureAwait(false);
        return Stopwatch.GetElapsedTime(started);
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        _listener.Dispose();
        await Task.WhenAll(_accepting).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        _stop.Dispose();
    }

    private async Task AcceptLoopAsync()
    {
        while (true)
        {
            Socket socket;
            try
            {
                socket = await _listener.AcceptAsync(_stop.Token).ConfigureAwait(false);
            }
            catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
            {
                return;
            }

            socket.NoDelay = true;
            try
            {
                await _serve(socket).ConfigureAwait(false);
                if (Interlocked.Decrement(ref _toServe) == 0)
                {
                    Volatile.Read(ref _served).TrySetResult();
                }
            }
            catch (Exception e) when (!_stop.IsCancellationRequested)
            {
                // A server-side failure fails the run at once instead of leaving it to time out.
                Volatile.Read(ref _served).TrySetException(e);
            }
        }
    }
}
