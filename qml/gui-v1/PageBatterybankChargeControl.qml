// dbus-batterybank GUI v1: the charge limits with the mode and what limits them right now.
import QtQuick 2
import com.victron.velib 1.0
import "utils.js" as Utils

MbPage {
	id: root

	property string bindPrefix

	model: VisibleItemModel {
		MbItemValue {
			description: qsTr("Charge mode")
			item.bind: Utils.path(root.bindPrefix, "/Info/ChargeMode")
			show: item.valid
		}
		MbItemValue {
			description: qsTr("Charge Voltage Limit (CVL)")
			item.bind: Utils.path(root.bindPrefix, "/Info/MaxChargeVoltage")
		}
		MbItemValue {
			description: qsTr("Charge Current Limit (CCL)")
			item.bind: Utils.path(root.bindPrefix, "/Info/MaxChargeCurrent")
		}
		MbItemValue {
			description: qsTr("Charge limited by")
			item.bind: Utils.path(root.bindPrefix, "/Info/ChargeLimitation")
		}
		MbItemValue {
			description: qsTr("Discharge Current Limit (DCL)")
			item.bind: Utils.path(root.bindPrefix, "/Info/MaxDischargeCurrent")
		}
		MbItemValue {
			description: qsTr("Discharge limited by")
			item.bind: Utils.path(root.bindPrefix, "/Info/DischargeLimitation")
		}
	}
}
