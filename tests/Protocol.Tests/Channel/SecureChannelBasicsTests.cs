using SecureChannels.Protocol.Channel;

namespace SecureChannels.Protocol.Tests.Channel;

public sealed class SecureChannelBasicsTests
{
    [Fact]
    public async Task TwoAgentsOpenAChannelAndSeeEachOthersVerifiedIdentity()
    {
        await using var kit = await ChannelTestKit.CreateAsync();
        var alice = await kit.CreateAgentAsync(["role=billing", "env=prod"]);
        var bob = await kit.CreateAgentAsync(["role=ledger"], principal: "team:finance");

        var (a, b) = await ChannelTestKit.OpenAsync(
            kit.Options(alice, "subject.role == \"ledger\""),
            kit.Options(bob, "subject.role == \"billing\" && subject.env in [\"prod\"]"));
        await using (a)
        await using (b)
        {
            Assert.Equal(bob.Identity.Identifier, a.Peer.Identifier);
            Assert.Equal(alice.Identity.Identifier, b.Peer.Identifier);
            Assert.Equal("team:finance", a.Peer.Principal.ToString());
            Assert.Equal("user:alice", b.Peer.Principal.ToString());
            Assert.Equal(a.HandshakeHash.ToArray(), b.HandshakeHash.ToArray());
            Assert.Equal(kit.Authority.Identifier, b.Peer.Credentials[0].Authority);
        }
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(65518)]
    [InlineData(65519)]
    [InlineData(200_000)]
    public async Task MessagesOfEverySizeArriveWholeAndInOrder(int size)
    {
        await using var kit = await ChannelTestKit.CreateAsync();
        var alice = await kit.CreateAgentAsync(["role=a"]);
        var bob = await kit.CreateAgentAsync(["role=b"]);
        var (a, b) = await ChannelTestKit.OpenAsync(kit.Options(alice), kit.Options(bob));
        await using (a)
        await using (b)
        {
            var first = Enumerable.Range(0, size).Select(i => (byte)i).ToArray();
            var second = Enumerable.Range(0, size).Select(i => (byte)(i * 7)).ToArray();
            await a.SendAsync(first);
            await a.SendAsync(second);

            using var one = await b.ReceiveAsync();
            using var two = await b.ReceiveAsync();
            Assert.Equal(first, one!.Payload.ToArray());
            Assert.Equal(second, two!.Payload.ToArray());
        }
    }

    [Fact]
    public async Task GracefulCloseIsSeenByBothSides()
    {
        await using var kit = await ChannelTestKit.CreateAsync();
        var alice = await kit.CreateAgentAsync(["role=a"]);
        var bob = await kit.CreateAgentAsync(["role=b"]);
        var (a, b) = await ChannelTestKit.OpenAsync(kit.Options(alice), kit.Options(bob));
        await using (a)
        await using (b)
        {
            await a.SendAsync("last words"u8.ToArray());
            await a.CloseAsync();

            using var last = await b.ReceiveAsync();
            Assert.Equal("last words"u8.ToArray(), last!.Payload.ToArray());
            Assert.Null(await b.ReceiveAsync());
            Assert.Equal(ChannelErrorCode.Normal, (await a.Completion).Code);
            var bobSide = await b.Completion;
            Assert.Equal(ChannelErrorCode.Normal, bobSide.Code);
            Assert.True(bobSide.FromPeer);
        }
    }

    [Fact]
    public async Task WithoutAPolicyTheResponderDeniesAndTheInitiatorLearnsOnlyTheCode()
    {
        await using var kit = await ChannelTestKit.CreateAsync();
        var alice = await kit.CreateAgentAsync(["role=a"]);
        var bob = await kit.CreateAgentAsync(["role=b"]);

        var connection = ChannelTestKit.CreateConnection();
        var accept = SecureChannel.AcceptAsync(connection.Responder, kit.Options(bob, policy: null));
        var connect = SecureChannel.ConnectAsync(connection.Initiator, kit.Options(alice));

        var local = await Assert.ThrowsAsync<SecureChannelException>(() => accept);
        var remote = await Assert.ThrowsAsync<SecureChannelException>(() => connect);
        Assert.Equal(ChannelErrorCode.AccessDenied, local.Code);
        Assert.Contains("no access policy", local.Message, StringComparison.Ordinal);
        Assert.Equal(ChannelErrorCode.AccessDenied, remote.Code);
        Assert.True(remote.FromPeer);
        Assert.DoesNotContain("policy", remote.Message, StringComparison.Ordinal);
    }
}
