using System.Net.Security;
using System.Net.Sockets;
using SecureChannels.Protocol.Channel;

namespace SecureChannels.Benchmarks.SideBySide;

/// <summary>
/// The three kinds of connection compared on loopback TCP (Nagle off), each opened over a fresh socket pair and checked
/// before use: our channel over <see cref="LoopbackTcp.Pipe"/> (what agents dial with), TLS 1.3 with mutual certificates over
/// <see cref="NetworkStream"/>, and bare <see cref="NetworkStream"/>s. Each end owns its socket.
/// </summary>
internal static class LoopbackConnections
{
    /// <summary>Both ends of a channel between <paramref name="peers"/>, checked to agree on who they are.</summary>
    public static async Task<(SecureChannel Initiator, SecureChannel Responder)> ChannelAsync(ChannelPeers peers)
    {
        var (client, server, _) = await LoopbackTcp.PairAsync(throughForwarder: false).ConfigureAwait(false);
        var (initiator, responder) = await peers.OpenAsync(LoopbackTcp.Pipe(client), LoopbackTcp.Pipe(server)).WaitAsync(RelayPeers.Guard).ConfigureAwait(false);
        peers.EnsurePaired(initiator, responder);
        return (initiator, responder);
    }

    /// <summary>Both ends of a TLS connection with <paramref name="tls"/>'s options, checked to be TLS 1.3 with mutual authentication.</summary>
    public static async Task<(SslStream Client, SslStream Server)> TlsAsync(TlsPeers tls)
    {
        var (client, server, _) = await LoopbackTcp.PairAsync(throughForwarder: false).ConfigureAwait(false);
        var (clientTls, serverTls) = await tls.ConnectAsync(new NetworkStream(client, ownsSocket: true), new NetworkStream(server, ownsSocket: true)).WaitAsync(RelayPeers.Guard).ConfigureAwait(false);
        TlsPeers.EnsureMutualTls13(clientTls);
        TlsPeers.EnsureMutualTls13(serverTls);
        return (clientTls, serverTls);
    }

    /// <summary>Both ends of a bare TCP connection.</summary>
    public static async Task<(NetworkStream Client, NetworkStream Server)> RawAsync()
    {
        var (client, server, _) = await LoopbackTcp.PairAsync(throughForwarder: false).ConfigureAwait(false);
        return (new NetworkStream(client, ownsSocket: true), new NetworkStream(server, ownsSocket: true));
    }
}
