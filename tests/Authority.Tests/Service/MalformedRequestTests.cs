using SecureChannels.Protocol.Authority;
using SecureChannels.Protocol.Channel;
using SecureChannels.Protocol.Wire;

namespace SecureChannels.Authority.Tests.Service;

/// <summary>Bytes a caller sends on its channel that are not a request: each gets a typed refusal, and the channel stays usable.</summary>
public sealed class MalformedRequestTests
{
    public static TheoryData<string, byte[], ulong, AuthorityErrorCode> Garbage => new()
    {
        { "not MessagePack at all", [0xc1, 0xc1, 0xc1], 0, AuthorityErrorCode.Malformed },
        { "an empty message", [], 0, AuthorityErrorCode.Malformed },
        { "a truncated envelope", new AuthorityMessage(AuthorityMessageType.Query, 7, [0x92, 0x01]).Encode()[..5], 0, AuthorityErrorCode.Malformed },
        { "an unknown type", Envelope(0x20, 9, []), 0, AuthorityErrorCode.Malformed },
        { "a reply sent as a request", new AuthorityMessage(AuthorityMessageType.Reply, 11, []).Encode(), 11, AuthorityErrorCode.Malformed },
        { "a non-canonical body", new AuthorityMessage(AuthorityMessageType.Query, 12, [0x92, 0xcc, 0x01, 0xa1, 0x78]).Encode(), 12, AuthorityErrorCode.Malformed },
        { "a refresh of an id of the wrong length", new AuthorityMessage(AuthorityMessageType.Refresh, 13, [0x91, 0xc4, 0x03, 1, 2, 3]).Encode(), 13, AuthorityErrorCode.Malformed },
        { "an enroll with no ticket", new AuthorityMessage(AuthorityMessageType.Enroll, 14, [0x90]).Encode(), 14, AuthorityErrorCode.Malformed },
        { "a revocation of an unknown kind", new AuthorityMessage(AuthorityMessageType.Revoke, 15, [0x93, 0x09, 0xc4, 0x01, 0x00, 0xa0]).Encode(), 15, AuthorityErrorCode.Malformed },
        { "a chain that is not one", new AuthorityMessage(AuthorityMessageType.RegisterDelegation, 16, [0x91, 0xc4, 0x02, 0x90, 0x90]).Encode(), 16, AuthorityErrorCode.CredentialInvalid },
    };

    [Theory]
    [MemberData(nameof(Garbage))]
    public async Task Garbage_is_refused_with_a_typed_code_and_the_channel_stays_open(string what, byte[] message, ulong expectedId, AuthorityErrorCode expected)
    {
        Assert.NotNull(what);
        await using var kit = await AuthorityTestKit.CreateAsync();
        await kit.StartAsync();
        var agent = await kit.CreateAgentAsync();
        var pipe = await AuthorityTestKit.ConnectTcpAsync(kit.Current!.Server.EndPoint!);
        await using var channel = await SecureChannel.ConnectAsync(pipe, kit.Options(agent, $"peer.identifier == \"{kit.Identity.Identifier}\""));

        await channel.SendAsync(message);
        var refusal = await ReceiveAsync(channel);

        Assert.Equal(AuthorityMessageType.Refusal, refusal.Type);
        Assert.Equal(expectedId, refusal.RequestId);
        Assert.Equal(expected, refusal.ToException().Code);

        // The same channel still answers a good request.
        await channel.SendAsync(new AuthorityMessage(AuthorityMessageType.Refresh, 99, [0x91, 0xc4, 0x10, .. new byte[16]]).Encode());
        var answer = await ReceiveAsync(channel);
        Assert.Equal(99UL, answer.RequestId);
        Assert.Equal(AuthorityErrorCode.CredentialUnknown, answer.ToException().Code);
    }

    [Fact]
    public async Task A_message_beyond_the_largest_ends_the_channel_as_too_large()
    {
        await using var kit = await AuthorityTestKit.CreateAsync();
        await kit.StartAsync();
        var agent = await kit.CreateAgentAsync();
        var pipe = await AuthorityTestKit.ConnectTcpAsync(kit.Current!.Server.EndPoint!);
        var options = kit.Options(agent, $"peer.identifier == \"{kit.Identity.Identifier}\"");
        await using var channel = await SecureChannel.ConnectAsync(pipe, options);

        await channel.SendAsync(new byte[AuthorityLimits.MaxMessageLength + 1]);

        var closed = await channel.Completion.WaitAsync(AuthorityTestKit.Guard);
        Assert.Equal(ChannelErrorCode.MessageTooLarge, closed.Code);
        Assert.True(closed.FromPeer);
    }

    private static byte[] Envelope(ulong type, ulong id, byte[] body)
    {
        var writer = new CanonicalWriter();
        writer.WriteArray(4);
        writer.WriteUnsigned(1);
        writer.WriteUnsigned(type);
        writer.WriteUnsigned(id);
        writer.WriteBytes(body);
        return writer.ToArray();
    }

    private static async Task<AuthorityMessage> ReceiveAsync(SecureChannel channel)
    {
        using var message = await channel.ReceiveAsync().AsTask().WaitAsync(AuthorityTestKit.Guard);
        Assert.NotNull(message);
        return AuthorityMessage.Decode(message.Payload.ToArray());
    }
}
