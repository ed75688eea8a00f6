package awsimport

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// Input formats accepted by Parse.
const (
	FormatAuto      = "auto"      // decide from the content
	FormatXML       = "xml"       // CustomerGatewayConfiguration XML, or AWS CLI JSON holding it
	FormatTerraform = "terraform" // Terraform outputs of an aws_vpn_connection
)

// Parse parses data in the given format. FormatXML also accepts the JSON that
// `aws ec2 describe-vpn-connections` (one connection) or
// `aws ec2 create-vpn-connection` prints, which carries the XML in its
// CustomerGatewayConfiguration field. FormatAuto picks XML for a document
// starting with '<', the AWS CLI shape for JSON with a VpnConnection(s) key,
// and Terraform for other JSON. The text form of `terraform output` (lines
// of name = value) is refused with a hint to use `terraform output -json`.
func Parse(data []byte, format string) (*Connection, error) {
	if len(data) > MaxInputSize {
		return nil, fmt.Errorf("input is %d bytes; more than the %d an AWS VPN configuration can plausibly be", len(data), MaxInputSize)
	}
	trimmed := bytes.TrimSpace(bytes.TrimPrefix(data, []byte("\xef\xbb\xbf")))
	isJSON := len(trimmed) > 0 && trimmed[0] == '{'
	if format != FormatXML && isTerraformText(trimmed) {
		return nil, fmt.Errorf("this is the text of `terraform output`, which cgwd cannot read reliably; use `terraform output -json` instead")
	}
	switch format {
	case FormatAuto, "":
		if !isJSON {
			return ParseXML(data)
		}
		if x, extra, ok, err := cliXML(trimmed); ok {
			if err != nil {
				return nil, err
			}
			return extra.apply(ParseXML(x))
		}
		return ParseTerraform(trimmed)
	case FormatXML:
		if isJSON {
			x, extra, ok, err := cliXML(trimmed)
			if !ok {
				return nil, fmt.Errorf("input is JSON without a VpnConnection(s) key; for Terraform outputs use format terraform")
			}
			if err != nil {
				return nil, err
			}
			return extra.apply(ParseXML(x))
		}
		return ParseXML(data)
	case FormatTerraform:
		return ParseTerraform(trimmed)
	default:
		return nil, fmt.Errorf("format %q is not one of auto, xml, terraform", format)
	}
}

// cliXML extracts CustomerGatewayConfiguration from AWS CLI JSON, and
// what the JSON says beside it (static routing, routes). ok is false when
// data does not have the AWS CLI shape.
func cliXML(data []byte) (x []byte, extra *cliConn, ok bool, err error) {
	type conn = cliConn
	var doc struct {
		Many []conn `json:"VpnConnections"`
		One  *conn  `json:"VpnConnection"`
	}
	if json.Unmarshal(data, &doc) != nil || (doc.Many == nil && doc.One == nil) {
		return nil, nil, false, nil
	}
	c := doc.One
	if c == nil {
		if len(doc.Many) != 1 {
			return nil, nil, true, fmt.Errorf("AWS CLI JSON lists %d VPN connections; import one (aws ec2 describe-vpn-connections --vpn-connection-ids vpn-...)", len(doc.Many))
		}
		c = &doc.Many[0]
	}
	if c.XML == "" {
		return nil, nil, true, fmt.Errorf("VPN connection %s has no CustomerGatewayConfiguration (is it deleted, or was it described without permission to see it?)", c.ID)
	}
	return []byte(c.XML), c, true, nil
}
