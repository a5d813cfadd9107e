using SecureChannels.Protocol.Authority;
using SecureChannels.Protocol.Channel;
using SecureChannels.Protocol.Credentials;

namespace SecureChannels.Authority.Tests.Service;

public sealed class RegisteredDelegationTests
{
    [Fact]
    public async Task A_verifier_that_requires_registration_accepts_a_registered_delegation_and_refuses_an_unregistered_one()
    {
        await using var kit = await AuthorityTestKit.CreateAsync();
        await kit.StartAsync();
        var orchestrator = await kit.CreateAgentAsync();
        var registered = await kit.CreateAgentAsync();
        var unregistered = await kit.CreateAgentAsync();
        var verifier = await kit.CreateAgentAsync();
        verifier.RequireRegisteredDelegations = true;
        var parent = await kit.EnrollAsync(orchestrator, "user:alice", ["role=worker"]);
        var now = kit.Time.GetUtcNow();
        var client = await kit.ConnectAsync(orchestrator);
        registered.Credentials = [await client.RegisterDelegationAsync(await CredentialIssuer.DelegateAsync(orchestrator.Identity, parent, registered.Identifier, AttributeSet.Parse(["role=worker"]), now, now.AddMinutes(30), 1))];
        unregistered.Credentials = [await CredentialIssuer.DelegateAsync(orchestrator.Identity, parent, unregistered.Identifier, AttributeSet.Parse(["role=worker"]), now, now.AddMinutes(30), 1)];
        var pin = $"peer.identifier == \"{verifier.Identifier}\"";

        var (initiator, responder) = await kit.ChannelAsync(registered, pin, verifier, "subject.role == \"worker\"");
        await AuthorityTestKit.AssertCarriesAsync(initiator, responder);
        Assert.Equal(2, responder.Peer.ChainLength);
        var refused = await Assert.ThrowsAsync<SecureChannelException>(() => kit.ChannelAsync(unregistered, pin, verifier, "subject.role == \"worker\""));
        Assert.Equal(ChannelErrorCode.AccessDenied, refused.Code);

        // Receipts travel down: a registered sub-agent's own registered delegation passes; one without its receipt does not.
        var leaf = await kit.CreateAgentAsync();
        var deeper = await CredentialIssuer.DelegateAsync(registered.Identity, registered.Credentials[0], leaf.Identifier, AttributeSet.Parse(["role=worker"]), now, now.AddMinutes(10), 0);
        Assert.Single(deeper.Registrations);
        var asRegistered = await kit.ConnectAsync(registered);
        leaf.Credentials = [await asRegistered.RegisterDelegationAsync(deeper)];
        Assert.Equal(2, leaf.Credentials[0].Registrations.Length);
        var (deepInitiator, deepResponder) = await kit.ChannelAsync(leaf, pin, verifier, "subject.role == \"worker\"");
        Assert.Equal(3, deepResponder.Peer.ChainLength);
        await AuthorityTestKit.AssertCarriesAsync(deepInitiator, deepResponder);
    }

    [Fact]
    public async Task A_receipt_covers_exactly_one_credential_of_its_own_authority_and_round_trips_in_the_chain_encoding()
    {
        await using var kit = await AuthorityTestKit.CreateAsync();
        await kit.StartAsync();
        var orchestrator = await kit.CreateAgentAsync();
        var sub = await kit.CreateAgentAsync();
        var parent = await kit.EnrollAsync(orchestrator, "user:alice", ["role=worker"]);
        var now = kit.Time.GetUtcNow();
        var delegated = await CredentialIssuer.DelegateAsync(orchestrator.Identity, parent, sub.Identifier, AttributeSet.Parse(["role=worker"]), now, now.AddMinutes(30), 0);
        var other = await CredentialIssuer.DelegateAsync(orchestrator.Identity, parent, sub.Identifier, AttributeSet.Parse(["role=worker"]), now, now.AddMinutes(20), 0);

        var withReceipt = await (await kit.ConnectAsync(orchestrator)).RegisterDelegationAsync(delegated);
        var receipt = Assert.Single(withReceipt.Registrations);

        Assert.True(receipt.Covers(delegated.Leaf, kit.Identity.Verified));
        Assert.False(receipt.Covers(other.Leaf, kit.Identity.Verified));
        Assert.False(receipt.Covers(delegated.Leaf, orchestrator.Identity.Verified));
        Assert.False(new SignedDelegationReceipt(receipt.Receipt, receipt.IssuerChangeHash, new byte[64]).Covers(delegated.Leaf, kit.Identity.Verified));
        var decoded = CredentialChain.Decode(withReceipt.Encoded);
        Assert.Equal(withReceipt.Encoded, decoded.Encoded);
        Assert.Equal(receipt, Assert.Single(decoded.Registrations));

        // Without receipts a chain keeps its three-element encoding; an empty fourth element is not canonical.
        Assert.Equal(0x93, delegated.Encoded[0]);
        var padded = (byte[])[0x94, .. delegated.Encoded.AsSpan(1), 0x90];
        Assert.Equal(CredentialErrorKind.Malformed, Assert.Throws<CredentialException>(() => CredentialChain.Decode(padded)).Kind);

        // A verifier requiring registration names why it refuses.
        var verifier = new CredentialVerifier(new TrustAnchors().Trust(kit.Identity.Verified), new RevocationRegistry(), kit.Time, new CredentialVerifierOptions { RequireRegisteredDelegations = true });
        Assert.Equal(CredentialErrorKind.Unregistered, Assert.Throws<CredentialException>(() => verifier.Verify(other)).Kind);
        Assert.Equal(sub.Identifier, verifier.Verify(withReceipt).Subject);
    }
}
