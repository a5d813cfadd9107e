using System.Net;
using System.Net.Sockets;
using SecureChannels.Protocol.Wire;

namespace SecureChannels.Benchmarks;

/// <summary>
/// Loopback TCP as agents use it: sockets with Nagle off, each end a <see cref="SocketPipe"/>, the transport agents
/// dial relays and authorities with (src/Protocol/Wire), so the benchmarks time the I/O path that is deployed.
/// </summary>
internal static class LoopbackTcp
{
    /// <summary>How <see cref="Pipe"/> carries a channel, as the side-by-side results state it.</summary>
    public const string PipeDescription = "SocketPipe (src/Protocol/Wire/SocketPipe.cs, the transport agents dial relays and authorities with)";

    public static async Task<Socket> ConnectAsync(IPEndPoint endpoint)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            await socket.ConnectAsync(endpoint).ConfigureAwait(false);
            return socket;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    public static Socket Listen()
    {
        var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(512);
        return listener;
    }

    /// <summary>
    /// Two connected sockets: straight to each other or, when <paramref name="throughForwarder"/>, through a
    /// <see cref="TcpForwarder"/> toward the accepting end (returned too, for disposal).
    /// </summary>
    public static async Task<(Socket Client, Socket Server, TcpForwarder? Forwarder)> PairAsync(bool throughForwarder)
    {
        using var listener = Listen();
        var target = (IPEndPoint)listener.LocalEndPoint!;
        var forwarder = throughForwarder ? new TcpForwarder(target) : null;
        var accept = listener.AcceptAsync();
        var client = await ConnectAsync(forwarder?.EndPoint ?? target).ConfigureAwait(false);
        var server = await accept.ConfigureAwait(false);
        server.NoDelay = true;
        return (client, server, forwarder);
    }

    /// <summary>What agents run a channel over: the <see cref="SocketPipe"/> of a connected socket, which it then owns.</summary>
    public static SocketPipe Pipe(Socket socket) => new(socket);
}

/// <summary>
/// The plain TCP forwarder baseline: accepts on loopback, connects to <see cref="TcpForwarder"/>'s target, and
/// pumps bytes both ways with two <see cref="Stream.CopyToAsync(Stream)"/>: what any byte relay costs, with no
/// framing, no hop cryptography and no flow control of its own.
/// </summary>
internal sealed class TcpForwarder : IAsyncDisposable
{
    private readonly Socket _listener;
    private readonly IPEndPoint _target;
    private readonly CancellationTokenSource _stop = new();
    private readonly List<Socket> _sockets = [];
    private readonly Task _accepting;

    public TcpForwarder(IPEndPoint target)
    {
        _target = target;
        _listener = LoopbackTcp.Listen();
        EndPoint = (IPEndPoint)_listener.LocalEndPoint!;
        _accepting = AcceptLoopAsync();
    }

    public IPEndPoint EndPoint { get; }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        _listener.Dispose();
        lock (_sockets)
        {
            foreach (var socket in _sockets)
            {
                socket.Dispose();
            }
        }

        await _accepting.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        _stop.Dispose();
    }

    private async Task AcceptLoopAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket inbound;
            try
            {
                inbound = await _listener.AcceptAsync(_stop.Token).ConfigureAwait(false);
            }
            catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
            {
                return;
            }

            inbound.NoDelay = true;
            var outbound = await LoopbackTcp.ConnectAsync(_target).ConfigureAwait(false);
            lock (_sockets)
            {
                _sockets.Add(inbound);
                _sockets.Add(outbound);
            }

            var a = new NetworkStream(inbound, ownsSocket: false);
            var b = new NetworkStream(outbound, ownsSocket: false);
            _ = PumpAsync(a, outbound);
            _ = PumpAsync(b, inbound);
        }
    }

    private static async Task PumpAsync(Stream from, Socket to)
    {
        try
        {
            using var destination = new NetworkStream(to, ownsSocket: false);
            await from.CopyToAsync(destination).ConfigureAwait(false);
            to.Shutdown(SocketShutdown.Send);
        }
        catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException)
        {
            // The benchmark tore the connection down.
        }
    }
}
