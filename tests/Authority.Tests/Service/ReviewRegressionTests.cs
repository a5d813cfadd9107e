using SecureChannels.Authority.Issuance;
using SecureChannels.Protocol.Authority;
using SecureChannels.Protocol.Credentials;
using SecureChannels.Protocol.Identity;
using SecureChannels.Protocol.Identity.Keys;

namespace SecureChannels.Authority.Tests.Service;

/// <summary>Defects a review found, each kept from coming back.</summary>
public sealed class ReviewRegressionTests
{
    [Fact]
    public async Task A_delegation_reusing_a_registered_id_is_refused_and_cannot_take_over_the_registry_entry()
    {
        await using var kit = await AuthorityTestKit.CreateAsync();
        await kit.StartAsync();
        var carol = await kit.CreateAgentAsync();
        var bob = await kit.CreateAgentAsync();
        var dave = await kit.CreateAgentAsync();
        var carolRoot = await kit.EnrollAsync(carol, "user:carol", ["role=worker"]);
        var bobRoot = await kit.EnrollAsync(bob, "user:bob", ["role=worker"]);
        var now = kit.Time.GetUtcNow();
        var carols = await CredentialIssuer.DelegateAsync(carol.Identity, carolRoot, dave.Identifier, AttributeSet.Parse(["role=worker"]), now, now.AddMinutes(30), 0);
        await (await kit.ConnectAsync(carol)).RegisterDelegationAsync(carols);

        // Bob signs a delegation of his own that carries the id of Carol's.
        var forged = new Credential(carols.Leaf.Credential.Id, bob.Identifier, dave.Identifier, Principal.Parse("user:bob"), AttributeSet.Parse(["role=worker"]), now, now.AddMinutes(30), 0,
            new ParentReference(bobRoot.Leaf.Credential.Id, bobRoot.Leaf.SignedHash));
        var signature = await SignatureDomain.SignAsync(bob.Identity.Signer, SignatureDomain.Credential, forged.Encoded);
        var bobs = new CredentialChain([.. bobRoot.Credentials, new SignedCredential(forged, bob.Identity.Verified.Current.ChangeHash, signature)], [bob.Identity.History]);
        var asBob = await kit.ConnectAsync(bob);

        Assert.Equal(AuthorityErrorCode.CredentialInvalid, (await Assert.ThrowsAsync<AuthorityException>(() => asBob.RegisterDelegationAsync(bobs))).Code);
        Assert.Equal(AuthorityErrorCode.Unauthorized, (await Assert.ThrowsAsync<AuthorityException>(() => asBob.RevokeAsync(RevocationEntry.ForCredential(carols.Leaf.Credential.Id), "mine?"))).Code);
        var below = await kit.Service.QueryAsync(Caller.Operator(kit.Identity.Identifier), new RegistryQuery(RegistryQueryKind.Below, carolRoot.Leaf.Credential.IdText));
        Assert.Equal(carol.Identifier, Assert.Single(below).Issuer);
    }

    [Fact]
    public async Task A_credential_replaced_by_a_refresh_cannot_be_refreshed_again()
    {
        await using var kit = await AuthorityTestKit.CreateAsync();
        await kit.StartAsync();
        var worker = await kit.CreateAgentAsync();
        var first = await kit.EnrollAsync(worker, "user:alice", ["role=worker"]);
        kit.Time.Advance(TimeSpan.FromMinutes(40));
        var client = await kit.ConnectAsync(worker, presentCredentials: false);
        var second = await client.RefreshAsync(first.Leaf.Credential.Id);
        await kit.Service.RevokeAsync(Caller.Operator(kit.Identity.Identifier), RevocationEntry.ForCredential(second.Leaf.Credential.Id), "stolen");

        var refused = await Assert.ThrowsAsync<AuthorityException>(() => client.RefreshAsync(first.Leaf.Credential.Id));

        Assert.Equal(AuthorityErrorCode.CredentialInvalid, refused.Code);
        Assert.Equal(AuthorityErrorCode.CredentialRevoked, (await Assert.ThrowsAsync<AuthorityException>(() => client.RefreshAsync(second.Leaf.Credential.Id))).Code);
    }

    [Fact]
    public async Task Roles_are_not_delegable()
    {
        await using var kit = await AuthorityTestKit.CreateAsync();
        await kit.StartAsync();
        var admin = await kit.CreateAgentAsync();
        var helper = await kit.CreateAgentAsync();
        var root = await kit.EnrollAsync(admin, "system:ops", ["authority-role=admin"], maxDepth: 1);
        var now = kit.Time.GetUtcNow();
        var delegated = await CredentialIssuer.DelegateAsync(admin.Identity, root, helper.Identifier, AttributeSet.Parse(["authority-role=admin"]), now, now.AddMinutes(30), 0);
        helper.Credentials = [await (await kit.ConnectAsync(admin)).RegisterDelegationAsync(delegated)];

        var asHelper = await kit.ConnectAsync(helper);

        Assert.Equal(AuthorityErrorCode.Unauthorized, (await Assert.ThrowsAsync<AuthorityException>(() => asHelper.PublishPolicyAsync("billing", "true"))).Code);
        Assert.Equal(1UL, await (await kit.ConnectAsync(admin)).PublishPolicyAsync("billing", "true"));
    }

    [Fact]
    public async Task After_the_authority_rotates_its_key_it_starts_and_republishes_under_the_new_key()
    {
        await using var kit = await AuthorityTestKit.CreateAsync();
        await kit.StartAsync();
        var operatorCaller = Caller.Operator(kit.Identity.Identifier);
        await kit.Service.RevokeAsync(operatorCaller, RevocationEntry.ForPrincipal(Principal.Parse("user:gone")), "left");
        await kit.Service.PublishPolicyAsync(operatorCaller, "billing", "subject.role == \"worker\"");
        await kit.Current!.StopAsync();

        using var next = InMemorySigner.Generate();
        var rotated = await kit.Identity.RotateAsync(next, kit.Time);
        var authority = await kit.StartAsync(identity: rotated);

        var list = authority.Server.Service.CurrentRevocations!;
        Assert.Equal(2UL, list.List.Sequence);
        Assert.Equal(rotated.Verified.Current.ChangeHash, list.IssuerChangeHash);
        Assert.Single(list.List.Entries);
        var policy = Assert.Single(authority.Server.Service.CurrentPolicies);
        Assert.Equal(2UL, policy.Document.Version);
        policy.Verify(rotated.Verified);
        Assert.True((await authority.Server.Service.VerifyAuditAsync()).IsIntact);

        // A subscriber that knows only the identifier gets both, verified under the current key.
        var verifier = await kit.CreateAgentAsync();
        var book = new PolicyBook();
        var client = await kit.ConnectAsync(verifier);
        await client.SubscribeAsync(verifier.Revocations, book);
        await AuthorityTestKit.UntilAsync(() => verifier.Revocations.Find(kit.Identity.Identifier)?.List.Sequence == 2 && book.Find("billing") is not null);
    }
}
