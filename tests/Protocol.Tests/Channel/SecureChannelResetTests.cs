using System.IO.Pipelines;
using SecureChannels.Protocol.Channel;
using SecureChannels.Testing;

namespace SecureChannels.Protocol.Tests.Channel;

/// <summary>
/// A connection reset under a send or a close in progress (the transport fails the pending flush with its error, as
/// SocketPipe's send loop and socket transports do): the caller gets the channel's typed error, never the raw one.
/// </summary>
public sealed class SecureChannelResetTests
{
    [Fact]
    public async Task ASendInProgressWhenTheConnectionIsResetFailsWithConnectionLostNotARawIOException()
    {
        await using var kit = await ChannelTestKit.CreateAsync();
        var (a, b, connection) = await OpenHeldBackAsync(kit);
        await using (a)
        await using (b)
        {
            var sending = a.SendAsync(new byte[10_000]).AsTask();
            await connection.ToResponder.Delaying.WaitAsync(ChannelTestKit.Guard);
            Assert.False(sending.IsCompleted);

            connection.Link.Cut(new IOException("Connection reset by peer."), resetWriters: true);
            var failure = await Record.ExceptionAsync(() => sending.WaitAsync(ChannelTestKit.Guard));

            // SendAsync documents SecureChannelException only; the channel itself ends with ConnectionLost.
            Assert.Equal(ChannelErrorCode.ConnectionLost, (await a.Completion.WaitAsync(ChannelTestKit.Guard)).Code);
            var typed = Assert.IsType<SecureChannelException>(failure);
            Assert.Equal(ChannelErrorCode.ConnectionLost, typed.Code);
        }
    }

    [Fact]
    public async Task ACloseInProgressWhenTheConnectionIsResetEndsTheChannelWithoutARawIOException()
    {
        await using var kit = await ChannelTestKit.CreateAsync();
        var (a, b, connection) = await OpenHeldBackAsync(kit);
        await using (a)
        await using (b)
        {
            // A message fills the held-back pipe; the CLOSE behind it waits for the send lock, then in its flush.
            var sending = a.SendAsync(new byte[10_000]).AsTask();
            await connection.ToResponder.Delaying.WaitAsync(ChannelTestKit.Guard);
            var closing = a.CloseAsync();
            connection.Link.Cut(new IOException("Connection reset by peer."), resetWriters: true);
            await Record.ExceptionAsync(() => sending.WaitAsync(ChannelTestKit.Guard));
            var failure = await Record.ExceptionAsync(() => closing.WaitAsync(ChannelTestKit.Guard));

            Assert.Equal(ChannelErrorCode.ConnectionLost, (await a.Completion.WaitAsync(ChannelTestKit.Guard)).Code);
            Assert.True(failure is null or SecureChannelException, $"CloseAsync failed with {failure?.GetType().Name}: {failure?.Message}");
        }
    }

    // The link holds alice's records back and her pipe pauses at 1 KiB, so a send of 10 kB waits in its flush.
    private static async Task<(SecureChannel Alice, SecureChannel Bob, FaultyConnection Connection)> OpenHeldBackAsync(ChannelTestKit kit)
    {
        var alice = await kit.CreateAgentAsync(["role=a"]);
        var bob = await kit.CreateAgentAsync(["role=b"]);
        var connection = new FaultyConnection(new FaultPlan().Delay(2, new TaskCompletionSource().Task), initiatorOutput: new PipeOptions(pauseWriterThreshold: 1024, resumeWriterThreshold: 512));
        var (a, b) = await ChannelTestKit.OpenAsync(kit.Options(alice), kit.Options(bob), connection.Ends);
        return (a, b, connection);
    }
}
