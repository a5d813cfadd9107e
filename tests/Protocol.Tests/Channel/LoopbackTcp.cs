using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;

namespace SecureChannels.Protocol.Tests.Channel;

/// <summary>A TCP connection over loopback (port 0), each end's stream wrapped as an <see cref="IDuplexPipe"/>.</summary>
internal sealed class LoopbackTcp : IAsyncDisposable
{
    private readonly TcpClient _client;
    private readonly TcpClient _server;

    private LoopbackTcp(TcpClient client, TcpClient server)
    {
        _client = client;
        _server = server;
        Initiator = Wrap(client.GetStream());
        Responder = Wrap(server.GetStream());
    }

    public IDuplexPipe Initiator { get; }

    public IDuplexPipe Responder { get; }

    public (IDuplexPipe Initiator, IDuplexPipe Responder) Ends => (Initiator, Responder);

    public static async Task<LoopbackTcp> ConnectAsync()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        try
        {
            var port = ((IPEndPoint)listener.LocalEndpoint).Port;
            var client = new TcpClient(AddressFamily.InterNetwork) { NoDelay = true };
            var connecting = client.ConnectAsync(IPAddress.Loopback, port);
            var server = await listener.AcceptTcpClientAsync().WaitAsync(ChannelTestKit.Guard);
            server.NoDelay = true;
            await connecting.WaitAsync(ChannelTestKit.Guard);
            return new LoopbackTcp(client, server);
        }
        finally
        {
            listener.Stop();
        }
    }

    public ValueTask DisposeAsync()
    {
        _client.Dispose();
        _server.Dispose();
        return ValueTask.CompletedTask;
    }

    private static ChannelTestKit.DuplexPipe Wrap(NetworkStream stream) =>
        new(PipeReader.Create(stream), PipeWriter.Create(stream));
}
