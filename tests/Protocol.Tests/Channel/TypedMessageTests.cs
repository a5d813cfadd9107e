using MessagePack;
using SecureChannels.Protocol.Channel;

namespace SecureChannels.Protocol.Tests.Channel;

public sealed class TypedMessageTests
{
    [Fact]
    public async Task TypedMessagesRoundTripThroughMessagePack()
    {
        await using var kit = await ChannelTestKit.CreateAsync();
        var alice = await kit.CreateAgentAsync(["role=a"]);
        var bob = await kit.CreateAgentAsync(["role=b"]);
        var (a, b) = await ChannelTestKit.OpenAsync(kit.Options(alice), kit.Options(bob));
        await using (a)
        await using (b)
        {
            var invoice = new Invoice("INV-7", 4200, ["line-1", "line-2"]);
            await a.SendAsync(invoice);

            var received = await b.ReceiveAsync<Invoice>();

            Assert.NotNull(received);
            Assert.Equal(invoice.Id, received.Id);
            Assert.Equal(invoice.AmountCents, received.AmountCents);
            Assert.Equal(invoice.Lines, received.Lines);
        }
    }

    [Fact]
    public async Task AMessageThatIsNotTheExpectedTypeIsASerializationError()
    {
        await using var kit = await ChannelTestKit.CreateAsync();
        var alice = await kit.CreateAgentAsync(["role=a"]);
        var bob = await kit.CreateAgentAsync(["role=b"]);
        var (a, b) = await ChannelTestKit.OpenAsync(kit.Options(alice), kit.Options(bob));
        await using (a)
        await using (b)
        {
            await a.SendAsync("not messagepack at all"u8.ToArray());

            await Assert.ThrowsAsync<MessagePackSerializationException>(async () => await b.ReceiveAsync<Invoice>());
        }
    }

    [MessagePackObject]
    public sealed record Invoice([property: Key(0)] string Id, [property: Key(1)] long AmountCents, [property: Key(2)] string[] Lines);
}
