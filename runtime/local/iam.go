package local

import (
	"net/http"
	"time"

	"github.com/aws/aws-lambda-go/events"
)

// defaultAccountID is the account IAM identities name without
// Config.AccountID, the one CloudFormation's local pseudo parameters use.
const defaultAccountID = "123456789012"

// iamIdentity is who signed an AWS_IAM $connect. Locally an access key
// belongs to no IAM principal, so the principal is named after its key.
type iamIdentity struct {
	accessKey, accountID string
}

// authorizeIAM checks the upgrade request's SigV4 signature (Authorization
// header or presigned query) as API Gateway checks an AWS_IAM route's. It
// answers a refusal with API Gateway's 403 and error type and returns nil,
// or returns the signer's identity.
func (g *Gateway) authorizeIAM(w http.ResponseWriter, r *http.Request) *iamIdentity {
	key, err := g.connectSig.check(r.Context(), r, nil, time.Now())
	if err != nil {
		g.log.Info("local: $connect refused: AWS_IAM signature", "err", err)
		g.writeSignatureError(w, err)
		return nil
	}
	account := g.cfg.AccountID
	if account == "" {
		account = defaultAccountID
	}
	return &iamIdentity{accessKey: key, accountID: account}
}

// fill sets the identity fields API Gateway sets for an IAM-authorized
// request: the access key, the account, and the principal as caller, user
// and userArn (an IAM user named after the access key).
func (id *iamIdentity) fill(to *events.APIGatewayRequestIdentity) {
	to.AccessKey = id.accessKey
	to.AccountID = id.accountID
	to.Caller = id.accessKey
	to.User = id.accessKey
	to.UserArn = "arn:aws:iam::" + id.accountID + ":user/" + id.accessKey
}
