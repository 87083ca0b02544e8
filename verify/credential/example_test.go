package credential_test

import (
	"fmt"
	"log"

	"github.com/verifyd/verifyd/verify/credential"
)

func ExampleMinter_Classify() {
	key, err := credential.NewChecksumKey()
	if err != nil {
		log.Fatal(err)
	}
	m, err := credential.NewMinter(key)
	if err != nil {
		log.Fatal(err)
	}
	apiKey, err := m.NewAPIKey()
	if err != nil {
		log.Fatal(err)
	}
	agentKey, err := credential.NewAgentKey()
	if err != nil {
		log.Fatal(err)
	}
	id, err := credential.NewID()
	if err != nil {
		log.Fatal(err)
	}
	pat, err := credential.NewPAT(id)
	if err != nil {
		log.Fatal(err)
	}
	forged := apiKey[:35] + "AAAAAAAA"
	for _, tok := range []string{apiKey, agentKey, pat, "legacy-ams-key-0001", forged, "pat__x", "short"} {
		fmt.Println(m.Classify(tok))
	}
	// Output:
	// api_key
	// agent
	// pat
	// imported
	// malformed
	// malformed
	// malformed
}

func ExamplePATID() {
	tok := "pat_AAECAwQFBgcICQoLDA0ODw_" + "dGhpcy1pcy1hLTMyLWJ5dGUtc2VjcmV0LWZvci10ZXM"
	id, ok := credential.PATID(tok)
	fmt.Println(id, ok)
	// Output:
	// AAECAwQFBgcICQoLDA0ODw true
}

func ExampleValidateImported() {
	fmt.Println(credential.ValidateImported("legacy-ams-key-0001"))
	fmt.Println(credential.ValidateImported("vk_legacy-key-0001"))
	fmt.Println(credential.ValidateImported("legacy key 0001 with spaces"))
	// Output:
	// <nil>
	// credential: imported key starts with the reserved prefix "vk_"
	// credential: imported key has a space at byte 6
}
