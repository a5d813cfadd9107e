using SecureChannels.Client.Delegation;
using SecureChannels.Protocol.Channel;
using SecureChannels.Protocol.Credentials;

namespace SecureChannels.Client.Tests;

/// <summary>An orchestrator spawns sub-agents with narrowed credentials; verifiers see the whole chain, and a revocation closes exactly the sub-agent's channels.</summary>
public sealed class SubAgentTests
{
    [Fact]
    public async Task A_spawned_sub_agent_acts_for_the_same_user_with_a_narrower_credential_and_its_revocation_closes_only_its_channel()
    {
        await using var kit = await ClientTestKit.CreateAsync();
        var relay = await kit.StartRelayAsync();
        var revocations = new RevocationRegistry();
        var billing = await kit.StartAgentAsync(relay, "user:bob", ["role=billing"], "peer.principal == \"user:alice\" && (subject.role == \"orchestrator\" || subject.tool == \"invoices\")", revocations: revocations);
        var orchestrator = await kit.StartAgentAsync(relay, "user:alice", ["tool=invoices", "tool=payments", "role=orchestrator"], "peer.chain_length >= 1");

        await using var invoices = await orchestrator.SpawnSubAgentAsync(new SubAgentOptions { Attributes = AttributeSet.Parse(["tool=invoices"]), Lifetime = TimeSpan.FromMinutes(10) }).WaitAsync(ClientTestKit.Guard);
        await using var payments = await orchestrator.SpawnSubAgentAsync(new SubAgentOptions { Attributes = AttributeSet.Parse(["tool=payments"]), Lifetime = TimeSpan.FromMinutes(10) }).WaitAsync(ClientTestKit.Guard);
        Assert.NotEqual(orchestrator.Identifier, invoices.Identifier);
        Assert.Equal(kit.Time.GetUtcNow().AddMinutes(10), invoices.Credential.Leaf.Credential.NotAfter);

        // The verifier sees who acts (the sub-agent), for whom (alice), through whom (two links), with what (invoices only).
        var (opened, accepted) = await ClientTestKit.ConnectAsync(invoices.Client, billing);
        await using var _ = opened;
        await using var __ = accepted;
        Assert.Equal(invoices.Identifier, accepted.Peer.Identifier);
        Assert.Equal("user:alice", accepted.Peer.Principal.ToString());
        Assert.Equal(2, accepted.Peer.ChainLength);
        Assert.Equal(["invoices"], accepted.Peer.Attributes.Entries["tool"]);
        Assert.False(accepted.Peer.Attributes.Entries.ContainsKey("role"));

        // The payments sub-agent acts for alice too, but billing's policy wants the invoices tool; billing moves on
        // to the next channel, the orchestrator's own.
        var accepting = billing.AcceptChannelAsync();
        var denied = await Assert.ThrowsAsync<SecureChannelException>(() => payments.Client.OpenChannelAsync(billing.Identifier.ToString()).WaitAsync(ClientTestKit.Guard));
        Assert.Equal(ChannelErrorCode.AccessDenied, denied.Code);
        await using var direct = await orchestrator.OpenChannelAsync(billing.Identifier.ToString()).WaitAsync(ClientTestKit.Guard);
        await using var directAccepted = await accepting.WaitAsync(ClientTestKit.Guard);

        await kit.RevokeAsync([revocations], RevocationEntry.ForCredential(invoices.Credential.Leaf.Credential.Id));
        Assert.Equal(ChannelErrorCode.CredentialRevoked, (await accepted.Completion.WaitAsync(ClientTestKit.Guard)).Code);
        Assert.Equal(ChannelErrorCode.CredentialRevoked, (await opened.Completion.WaitAsync(ClientTestKit.Guard)).Code);
        await ClientTestKit.AssertCarriesAsync(direct, directAccepted);
    }

    [Fact]
    public async Task A_sub_agent_cannot_be_given_more_than_the_orchestrator_holds()
    {
        await using var kit = await ClientTestKit.CreateAsync();
        var relay = await kit.StartRelayAsync();
        var orchestrator = await kit.StartAgentAsync(relay, "user:alice", ["tool=invoices"], "peer.chain_length >= 1");

        var wider = await Assert.ThrowsAsync<CredentialException>(() => orchestrator.SpawnSubAgentAsync(new SubAgentOptions { Attributes = AttributeSet.Parse(["tool=admin"]), Lifetime = TimeSpan.FromMinutes(10) }));
        Assert.Equal(CredentialErrorKind.Widened, wider.Kind);
        var longer = await Assert.ThrowsAsync<CredentialException>(() => orchestrator.SpawnSubAgentAsync(new SubAgentOptions { Attributes = AttributeSet.Parse(["tool=invoices"]), Lifetime = TimeSpan.FromHours(2) }));
        Assert.Equal(CredentialErrorKind.Widened, longer.Kind);
        var deeper = await Assert.ThrowsAsync<CredentialException>(() => orchestrator.SpawnSubAgentAsync(new SubAgentOptions { Attributes = AttributeSet.Parse(["tool=invoices"]), Lifetime = TimeSpan.FromMinutes(10), MaxDelegationDepth = 5 }));
        Assert.Equal(CredentialErrorKind.Widened, deeper.Kind);
    }
}
